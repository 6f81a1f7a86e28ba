"""Auditing a hub at scale (issue 13): signature throughput locally and on Ray, the blockwise distance phase, scaling.

What is measured
----------------
The hub
    At least 500 real MNIST models, built once into ``bench/results/hub/`` (a zoo folder, so that
    ``zest search`` finds matched nulls in its manifest): the shipped zoo (``assets/zoo``, 90 models)
    with its distinct per-epoch checkpoints, and for every zoo model cheap real operations of
    :mod:`zest_core.zoo.reuse` and :mod:`zest_core.zoo.training` at levels the zoo does not have:
    global magnitude pruning of a further 30%, 60% and 90% of the weights still nonzero, without
    fine-tuning; 8 steps of fine-tuning (512 training digits of the model's task, batch 64, Adam at
    1e-4); and that fine-tuned copy quantised to int8 weights. Each derived model's held-out accuracy
    is measured and recorded in the manifest; a derived model whose weights equal another's (same
    sha256) is left out. No random-noise copies.
(1) signature throughput
    ``zest_core.hub.compute_signatures`` on a fixed subset of the hub (every 5th model), with small
    N and L: ``mnist:16`` and L = 100 (1,600 queries per model), no cache, so every signature is
    computed. Backends: local (torch's default threads, and 1 thread), Ray with 1 worker and with 2
    workers (1 thread per task). Models per second are from the wall time of the call; for Ray,
    ``ray.init`` is timed apart and the workers are started by an untimed warm-up call first. Then the whole
    hub on Ray with 2 workers into a cache folder, and one ``search_hub`` from that cache.
(2) distance phase
    ``zest_core.hub.hub_distance_matrix`` streamed to a ``.npy`` file, for M = 1,000, 5,000 and
    10,000, each in a fresh process, so that its peak resident memory is its own (reported above
    the process's memory after its imports) with the tracemalloc peak of the computation. The
    signatures are SYNTHETIC, of the real shape: C = 10 classes × ΣK columns, ΣK the super-pixels of
    the N = 128 MNIST reference set (quickshift, the default config), float64 normals in a
    file-backed stack. Speed does not depend on the values. 200 random entries of each matrix are
    checked against a plain numpy cosine. Also: M = 1,000 with a third of the models 5-class (the
    class-alignment path), and M = 2,000 with 1 and 2 BLAS threads (how the blocks divide).
(3) scaling and an estimate
    Time per pair from the blocks, time against (M/1,000)², how signatures divide across workers,
    and an ESTIMATE, not a measurement, for 100,000 models on 16 GPUs from the README's measured
    per-model GPU cost.

Everything is written as JSON to ``bench/results/hub_bench.json``. One run is noisy: the 2-core
machine is shared, so the 1-minute load average is recorded with each phase.

Usage
-----
    python bench/bench_hub.py            # everything (about 12 minutes on a 2-core machine)
    python bench/bench_hub.py --quick    # smoke run: a 60-model subset, M = 500 and 1,000
"""
from __future__ import annotations

import argparse
import copy
import datetime
import hashlib
import io
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np
import torch

from zest_core import ZestConfig, load_mnist
from zest_core._shared.atomic import atomic_write_bytes
from zest_core.hub import SignatureStack, compute_signatures, hub_distance_matrix, load_hub, search_hub
from zest_core.hub.backend import probe_columns
from zest_core.pipeline.distance import zest_distance
from zest_core.pipeline.probe import prepare_probe
from zest_core.zoo import load_zoo, reuse
from zest_core.zoo.manifest import FORMAT_VERSION, MANIFEST_NAME, ZOO_DIR, ZooEntry
from zest_core.zoo.nulls import lineage_root
from zest_core.zoo.training import accuracy, as_inputs, fit_labels

RESULTS_DIR = Path(__file__).resolve().parent / "results"
HUB_DIR = RESULTS_DIR / "hub"
PRUNE_LEVELS = (0.3, 0.6, 0.9)  # shares of the weights still nonzero
FINETUNE = {"images": 512, "batch_size": 64, "lr": 1e-4}
# What the hub is made of: a hub built with another recipe is rebuilt.
RECIPE = {"version": 2, "prune_further": PRUNE_LEVELS, "finetune": FINETUNE, "finetune_int8": True}
SIGNATURE_N, SIGNATURE_L = 16, 100
DISTANCE_N = 128
CLASSES = 10
README_GPU_SECONDS = 0.817  # README: one cold CIFAR ResNet-20 signature (N=128, L=1000) on an H100
README_GPU_WARM_SECONDS = 2.80 / 6  # README: the same GPU's 6-model matrix, per model
GPUS, FUTURE_MODELS = 16, 100_000
CHECKED_ENTRIES = 200


def load_average() -> float:
    return os.getloadavg()[0]


# ------------------------------------------------------------------------------------------ the hub


def seed_of(name: str) -> int:
    return zlib.crc32(name.encode()) % 2**31


def task_split(images: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The digits of a model's classes, labelled by output position (a permuted model's order)."""
    digits = [int(c) for c in classes]
    keep = np.isin(labels, digits)
    position = {d: k for k, d in enumerate(digits)}
    return images[keep], np.array([position[d] for d in labels[keep]], dtype=np.int64)


def save_state(model: torch.nn.Module, path: Path) -> str:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def build_hub(root: Path, *, rebuild: bool = False) -> dict[str, Any]:
    """The zoo, its checkpoints and 5 derived models per zoo model, as a zoo folder at ``root``."""
    zoo = load_zoo(ZOO_DIR)
    if not rebuild and (root / MANIFEST_NAME).is_file():
        built = load_zoo(root)
        if built.info.get("recipe") == json.loads(json.dumps(RECIPE)):
            return {"seconds": 0.0, "reused": True, "duplicates_left_out": built.info.get("duplicates_left_out")}
    if root.exists():
        shutil.rmtree(root)
    started = time.perf_counter()
    shutil.copytree(ZOO_DIR / "models", root / "models", dirs_exist_ok=True)
    train, test = load_mnist(split="train"), load_mnist(split="test")
    entries = [copy.deepcopy(e) for e in zoo.entries.values()]
    hashes = {e.sha256 for e in entries} | {c["sha256"] for e in entries for c in e.checkpoints.values()}
    duplicates: list[str] = []
    for parent in zoo.entries.values():
        module = zoo.load(parent.name).module
        source = lineage_root(zoo, parent.name)
        train_x, train_y = task_split(train.images, train.labels, parent.classes)
        test_x, test_y = task_split(test.images, test.labels, parent.classes)

        def add(suffix: str, relation: str, model: torch.nn.Module, description: str, epochs: int, **details) -> None:
            name = f"{parent.name}.{suffix}"
            file = f"models/{name}.pt"
            sha256 = save_state(model, root / file)
            if sha256 in hashes:  # the same weights as a model already in the hub: not a new model
                (root / file).unlink()
                duplicates.append(name)
                return
            hashes.add(sha256)
            entries.append(ZooEntry(
                name=name, arch=parent.arch, relation=relation, parent=parent.name, source=source, task=parent.task,
                classes=list(parent.classes), accuracy=accuracy(model, test_x, test_y), seed=seed_of(name),
                epochs=epochs, file=file, sha256=sha256, description=description, details=details,
            ))

        inputs, labels = as_inputs(train_x[: FINETUNE["images"]]), torch.from_numpy(train_y[: FINETUNE["images"]])
        already = reuse.sparsity(module)
        for further in PRUNE_LEVELS:
            pct = round(100 * further)
            amount = already + further * (1 - already)  # of all weights: the zeros are pruned first
            pruned = reuse.prune(module, inputs, labels, amount=amount, seed=seed_of(parent.name), epochs=0)
            add(f"hubprune{pct}", f"hub-prune-{pct}", pruned, f"{parent.name} with a further {pct}% of its nonzero "
                "weights pruned (global magnitude), no fine-tuning", 0, sparsity=reuse.sparsity(pruned))
        name = f"{parent.name}.hubtune8"
        tuned = fit_labels(copy.deepcopy(module), inputs, labels, seed=seed_of(name), epochs=1,
                           batch_size=FINETUNE["batch_size"], lr=FINETUNE["lr"])
        add("hubtune8", "hub-finetune", tuned, f"{parent.name} fine-tuned for 8 steps (512 digits, Adam 1e-4)", 1)
        add("hubtune8.int8", "hub-finetune+quantize", reuse.quantize_int8(tuned),
            f"{parent.name} fine-tuned for 8 steps, then int8 weights (per channel)", 1)
    manifest = {
        "format": FORMAT_VERSION, "description": "bench/bench_hub.py's hub: the demo zoo, its checkpoints and "
        "models derived from every zoo model by pruning a further 30/60/90% (no fine-tuning), 8 steps of "
        "fine-tuning, and int8 quantisation of the fine-tuned copy", "recipe": RECIPE,
        "duplicates_left_out": duplicates, "forget_indices": zoo.forget_indices.tolist(),
        "models": [e.to_dict() for e in entries],
    }
    atomic_write_bytes(root / MANIFEST_NAME, json.dumps(manifest, indent=1).encode())
    return {"seconds": time.perf_counter() - started, "reused": False, "duplicates_left_out": duplicates}


def hub_summary(root: Path) -> dict[str, Any]:
    hub = load_hub(root)
    derived = [e for e in hub.zoo.entries.values() if e.relation.startswith("hub-")]
    by_relation: dict[str, list[float]] = {}
    for entry in derived:
        by_relation.setdefault(entry.relation, []).append(entry.accuracy)
    return {
        "models": len(hub), "zoo_models": len(hub.zoo.entries) - len(derived),
        "checkpoints": sum(1 for m in hub.models if "@" in m.name), "derived": len(derived),
        "accuracy_by_relation": {r: {"min": min(a), "median": float(np.median(a)), "max": max(a), "count": len(a)}
                                 for r, a in sorted(by_relation.items())},
    }


# ------------------------------------------------------------------------------ (1) throughput


def throughput(root: Path, *, every: int, workers: Sequence[int], skip_ray: bool, cache_dir: Path) -> dict[str, Any]:
    hub = load_hub(root)
    subset = {m.name: m for m in hub.models[::every]}
    refset = load_mnist(SIGNATURE_N)
    config = ZestConfig(num_samples=SIGNATURE_L)
    runs = []

    def record(label: str, run: Any, models: int, init_seconds: float | None = None) -> None:
        entry = {
            "backend": label, "models": models, "computed": len(run.computed), "cached": len(run.cached),
            "failed": len(run.failures), "seconds": run.seconds, "models_per_second": models / run.seconds,
            "task_seconds_per_model": run.task_seconds / models, "slots": run.slots, "ray_init_seconds": init_seconds,
            "load_average": load_average(),
        }
        runs.append(entry)
        print(f"  {label:<34} {models:>4} models  {run.seconds:7.1f} s  {entry['models_per_second']:6.2f} models/s"
              f"  ({entry['task_seconds_per_model']:.3f} s per model inside the tasks)"
              + (f"  ray.init {init_seconds:.1f} s" if init_seconds is not None else ""), flush=True)

    compute_signatures(dict(list(subset.items())[:2]), refset, config, cache=False)  # warm-up, untimed
    record("local (torch's threads)", compute_signatures(subset, refset, config, cache=False), len(subset))
    record("local, 1 thread", compute_signatures(subset, refset, config, cache=False, threads=1), len(subset))
    full = None
    if not skip_ray:
        import ray

        for count in workers:
            started = time.perf_counter()
            ray.init(num_cpus=count, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
                     logging_level="WARNING")
            init_seconds = time.perf_counter() - started
            try:
                # Untimed: start the workers (each imports torch on its first task), as a long run amortises it.
                compute_signatures(dict(list(subset.items())[: 2 * count]), refset, config, cache=False,
                                   backend="ray", threads=1)
                run = compute_signatures(subset, refset, config, cache=False, backend="ray", threads=1)
                record(f"ray, {count} worker(s), 1 thread each", run, len(subset), init_seconds)
                if count == max(workers):
                    shutil.rmtree(cache_dir, ignore_errors=True)
                    whole = {m.name: m for m in hub.models}
                    full = compute_signatures(whole, refset, config, cache=cache_dir, backend="ray", threads=1)
                    record(f"ray, {count} workers: the whole hub", full, len(whole))
            finally:
                ray.shutdown()
    search = None
    if full is not None:
        started = time.perf_counter()
        result = search_hub("zoo:cnn-s0.prune50", hub, refset, config, top=5, cache=cache_dir)
        search = {
            "seconds_from_cache": time.perf_counter() - started, "suspect": result.suspect,
            "ranked": len(result.ranking), "cached": len(result.run.cached), "computed": len(result.run.computed),
            "top": [{"model": c.name, "distance": c.distance, "verdict": c.decision.verdict,
                     "p_value": c.decision.p_value, "null": len(c.null_models)} for c in result.candidates],
        }
        print(f"  search of {result.suspect} over the {len(result.ranking)} other hub models from the cache: "
              f"{search['seconds_from_cache']:.1f} s")
        for c in search["top"]:
            p = "n/a" if c["p_value"] is None else f"{c['p_value']:.2g}"
            print(f"    {c['model']:<34} d = {c['distance']:.5f}  {c['verdict']:<12} p = {p}  ({c['null']} unrelated)")
    return {"subset_every": every, "n": SIGNATURE_N, "samples": SIGNATURE_L, "runs": runs, "search": search}


# --------------------------------------------------------------------------- (2) distance phase


def synthetic_stack(path: Path, count: int, *, five_class_every: int | None = None) -> dict[str, Any]:
    """A file-backed stack of ``count`` synthetic signatures of the real shape (10 × ΣK of mnist:128)."""
    probe = prepare_probe(load_mnist(DISTANCE_N), ZestConfig(num_samples=100), torch.device("cpu"))
    columns = probe_columns(probe)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    with SignatureStack(columns, refset_fingerprint="synthetic", config=ZestConfig(), path=path) as stack:
        for k in range(count):
            classes = 5 if five_class_every and k % five_class_every == 0 else CLASSES
            stack.append(f"synthetic-{k}", rng.standard_normal((classes, int(columns[-1]))))
    return {"models": count, "columns": int(columns[-1]), "rows_per_model": CLASSES,
            "bytes": stack.describe()["bytes"], "seconds_to_write": time.perf_counter() - started}


def distance_child(argv: Sequence[str]) -> None:
    """In a fresh process: the streamed matrix of the first M models of a stack; prints one JSON line."""
    import tracemalloc

    count, stack_path, out_path, block_size, align = int(argv[0]), argv[1], argv[2], int(argv[3]), argv[4]
    stack = SignatureStack.open(stack_path)
    baseline = _rss_bytes()
    stamps: list[float] = []
    tracemalloc.start()
    started = time.perf_counter()
    hub_distance_matrix(stack, align=align, block_size=block_size, out=out_path, order=range(count),
                        progress=lambda done, total, stage: stamps.append(time.perf_counter()))
    seconds = time.perf_counter() - started
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # 200 entries against the pairwise engine (zest_distance: its own alignment and cosine), independent of the blocks.
    matrix = np.load(out_path, mmap_mode="r")
    segments = np.zeros((len(stack.image_columns) - 1, 1, 1), dtype=np.int32)
    worst = 0.0
    for i, j in np.random.default_rng(1).integers(0, count, size=(CHECKED_ENTRIES, 2)):
        want = 0.0 if i == j else zest_distance(stack.signature(int(i), segments), stack.signature(int(j), segments),
                                                align=align)
        worst = max(worst, abs(float(matrix[i, j]) - want))
    gaps = np.diff([started, *stamps])
    print(json.dumps({
        "M": count, "pairs": count * (count - 1) // 2, "seconds": seconds, "blocks": len(stamps),
        "block_seconds_median": float(np.median(gaps)), "block_size": block_size,
        "peak_rss_bytes": peak, "rss_after_imports_bytes": baseline, "tracemalloc_peak_bytes": traced_peak,
        "max_abs_error_vs_zest_distance": worst, "checked_entries": CHECKED_ENTRIES,
        "matrix_bytes": Path(out_path).stat().st_size, "threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
    }))


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run_distance(count: int, stack_path: Path, *, block_size: int, align: str = "auto",
                 threads: int | None = None) -> dict[str, Any]:
    out = stack_path.parent / f"distances_{count}.npy"
    env = dict(os.environ)
    if threads is not None:
        env.update({name: str(threads) for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    done = subprocess.run(
        [sys.executable, __file__, "--distance-child", str(count), str(stack_path), str(out), str(block_size), align],
        capture_output=True, text=True, env=env, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"distance phase for M = {count} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["load_average"] = load_average()
    out.unlink()
    mib = 2**20
    print(f"  M = {count:>6,}  {result['pairs']:>11,} pairs  {result['seconds']:7.1f} s  "
          f"{result['pairs'] / result['seconds'] / 1e6:6.2f} M pairs/s  peak RSS {result['peak_rss_bytes'] / mib:6.0f} MiB "
          f"({(result['peak_rss_bytes'] - result['rss_after_imports_bytes']) / mib:5.0f} above imports)  "
          f"tracemalloc {result['tracemalloc_peak_bytes'] / mib:5.0f} MiB  "
          f"matrix file {result['matrix_bytes'] / mib:6.0f} MiB  max error {result['max_abs_error_vs_zest_distance']:.1e}",
          flush=True)
    return result


def distances(sizes: Sequence[int], block_size: int, workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    stack_path = workdir / "synthetic.f64"
    shape = synthetic_stack(stack_path, max(sizes))
    print(f"  synthetic signatures: {shape['models']:,} × ({CLASSES} × {shape['columns']:,}) float64 "
          f"= {shape['bytes'] / 2**30:.2f} GiB on disk, written in {shape['seconds_to_write']:.1f} s", flush=True)
    results = [run_distance(m, stack_path, block_size=block_size) for m in sizes]
    small = min(sizes)
    threads = [run_distance(2 * small, stack_path, block_size=block_size, threads=t) for t in (1, 2)]
    mixed_path = workdir / "synthetic_mixed.f64"
    synthetic_stack(mixed_path, small, five_class_every=3)
    mixed = run_distance(small, mixed_path, block_size=block_size)
    mixed["note"] = "every third model 5-class: pairs across class counts take the alignment path"
    for path in (stack_path, mixed_path):
        path.unlink()
        path.with_name(path.name + ".json").unlink()
    return {"shape": shape, "sizes": results, "threads": threads, "mixed": mixed}


# ------------------------------------------------------------------------------------ (3) scaling


def scaling(signatures: dict[str, Any] | None, dist: dict[str, Any]) -> dict[str, Any]:
    sizes = dist["sizes"]
    base = sizes[0]
    print("\nScaling of the distance phase with M (from the blocks):")
    print(f"  {'M':>7}  {'seconds':>8}  {'t/t(M0)':>8}  {'(M/M0)^2':>9}  {'µs per pair':>12}  {'block (median)':>14}")
    for r in sizes:
        print(f"  {r['M']:>7,}  {r['seconds']:8.1f}  {r['seconds'] / base['seconds']:8.1f}  "
              f"{(r['M'] / base['M']) ** 2:9.1f}  {r['seconds'] / r['pairs'] * 1e6:12.3f}  {r['block_seconds_median']:12.3f} s")
    one, two = dist["threads"]
    print(f"  across cores (M = {one['M']:,}, BLAS threads): 1 thread {one['seconds']:.1f} s, 2 threads "
          f"{two['seconds']:.1f} s: speed-up {one['seconds'] / two['seconds']:.2f} on 2 cores; the blocks are "
          "independent, so machines divide them the same way")
    out: dict[str, Any] = {"distance_speedup_2_threads": one["seconds"] / two["seconds"]}
    if signatures:
        runs = {r["backend"]: r for r in signatures["runs"]}
        print("\nHow the signature phase divides across workers (same subset, models per second):")
        for label, r in runs.items():
            print(f"  {label:<34} {r['models_per_second']:6.2f}")
        ray = [r for r in signatures["runs"] if r["backend"].startswith("ray") and "whole" not in r["backend"]]
        if len(ray) == 2:
            out["ray_speedup_2_workers"] = ray[1]["models_per_second"] / ray[0]["models_per_second"]
            print(f"  Ray, 2 workers against 1: speed-up {out['ray_speedup_2_workers']:.2f}")
    largest = sizes[-1]
    per_pair = largest["seconds"] / largest["pairs"]
    pairs = FUTURE_MODELS * (FUTURE_MODELS - 1) // 2
    width = dist["shape"]["columns"] * CLASSES
    estimate = {
        "models": FUTURE_MODELS, "gpus": GPUS, "gpu_seconds_per_model": README_GPU_SECONDS,
        "signature_hours": FUTURE_MODELS * README_GPU_SECONDS / GPUS / 3600,
        "signature_hours_warm": FUTURE_MODELS * README_GPU_WARM_SECONDS / GPUS / 3600,
        "pairs": pairs, "distance_flops": 2.0 * pairs * width,
        "distance_hours_on_this_machine": per_pair * pairs / 3600,
        "matrix_bytes_float64": FUTURE_MODELS**2 * 8, "stack_bytes": FUTURE_MODELS * width * 8,
    }
    print(f"\nESTIMATE, not a measurement: {FUTURE_MODELS:,} models on a {GPUS}-GPU cluster")
    print(f"  signatures: {FUTURE_MODELS:,} × {README_GPU_SECONDS} s (README: one cold CIFAR ResNet-20 signature, "
          f"N = 128, L = 1000, on an H100) / {GPUS} GPUs = {estimate['signature_hours']:.2f} h, with one model per GPU "
          f"at a time and perfect packing; at the README's warm per-model cost ({README_GPU_WARM_SECONDS:.2f} s, its "
          f"6-model matrix) {estimate['signature_hours_warm']:.2f} h")
    print(f"  distances: {pairs:.3g} pairs, {estimate['distance_flops']:.2g} flops (MNIST shape, 10 × "
          f"{dist['shape']['columns']:,}); at this machine's measured {per_pair * 1e6:.3f} µs per pair (M = "
          f"{largest['M']:,}, 2 shared cores) {estimate['distance_hours_on_this_machine']:.1f} h on one such "
          "machine, divided by the number of machines the blocks are spread over; no GPU was measured for it")
    print(f"  storage: the matrix {estimate['matrix_bytes_float64'] / 1e9:.0f} GB in float64, the signatures "
          f"{estimate['stack_bytes'] / 1e9:.1f} GB (MNIST shape; CIFAR signatures have another ΣK)")
    out["estimate_100k_16_gpus"] = estimate
    return out


# ----------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: every 10th model, M = 500 and 1,000")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the hub even if bench/results/hub has it")
    parser.add_argument("--every", type=int, default=5, help="throughput subset: every k-th hub model (default 5)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000], help="M of the distance phase")
    parser.add_argument("--block-size", type=int, default=256, help="models per block (default 256)")
    parser.add_argument("--skip-ray", action="store_true", help="local backend only")
    parser.add_argument("--output", default=str(RESULTS_DIR / "hub_bench.json"), help="the JSON of the numbers")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.quick:
        args.every, args.sizes = 10, [500, 1000]
    started = time.perf_counter()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), load average {load_average():.1f}")
    print("\nThe hub (real models only):")
    built = build_hub(HUB_DIR, rebuild=args.rebuild)
    summary = hub_summary(HUB_DIR)
    how = "reused" if built["reused"] else f"built in {built['seconds']:.0f} s"
    print(f"  {summary['models']} models in {HUB_DIR}: {summary['zoo_models']} zoo models, {summary['checkpoints']} "
          f"checkpoints, {summary['derived']} derived ({how}; {len(built['duplicates_left_out'] or [])} derived "
          "copies equal to another model left out)")
    for relation, acc in summary["accuracy_by_relation"].items():
        print(f"    {relation:<20} {acc['count']:>3} models, held-out accuracy {100 * acc['min']:.1f}–"
              f"{100 * acc['max']:.1f}% (median {100 * acc['median']:.1f}%)")
    print(f"\n(1) Signature throughput (mnist:{SIGNATURE_N}, L = {SIGNATURE_L}, no cache; every {args.every}th hub model):")
    signatures = throughput(HUB_DIR, every=args.every, workers=(1, 2), skip_ray=args.skip_ray,
                            cache_dir=RESULTS_DIR / "hub_cache")
    print(f"\n(2) Distance phase (SYNTHETIC signatures of the real shape; streamed to .npy; block {args.block_size}):")
    dist = distances(args.sizes, args.block_size, RESULTS_DIR / "hub_distances")
    scale = scaling(signatures, dist)
    report = {
        "when": datetime.datetime.now().isoformat(timespec="seconds"), "machine": platform.platform(),
        "cores": os.cpu_count(), "torch": torch.__version__, "hub": summary, "hub_build": built,
        "signatures": signatures, "distances": dist, "scaling": scale, "seconds": time.perf_counter() - started,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=1))
    print(f"\nwrote {args.output} ({report['seconds']:.0f} s in all)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--distance-child":
        distance_child(sys.argv[2:])
    else:
        main()
