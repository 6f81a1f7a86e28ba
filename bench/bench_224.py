"""An audit of 224-px ImageNet-sized models on the CPU, beside a bare inference loop of the same network, in one run.

The setup of issue 22: a reference resnet18 (random init), the suspect a slightly perturbed copy of it,
three independently initialised resnet18s as the null, 64 photos at 224×224 (crops and flips of
scikit-image's colour photographs, written to a folder), ``zest audit ... --budget 4112 --no-cache``.
The models are saved as ``.safetensors`` (``resnet18:PATH`` for torchvision, ``timm:resnet18:PATH``
for timm) and the audit runs as its own process, under ``/usr/bin/time -v`` for its peak memory.

The first audit runs on a fresh, empty signature cache: every signature is computed, as with
``--no-cache`` (the cache only adds the writing of a few small files), and the cache it leaves lets a
second audit, of a new suspect, show what an audit costs once the reference and the null are cached.

The same network runs in a bare ``torch.inference_mode`` loop, channels-last, at the audit's batch
size, for up to 1,024 forward passes, once just before the audit and once just after it (a shared
machine's speed drifts over a 15-minute run): the mean of the two rates, times the audit's counted
queries, is pure inference of the audit's images, and the ratio of the audit's wall time to it is
what the audit costs above pure inference. The ratio against each loop alone is printed too.

Usage: python bench/bench_224.py [--family torchvision|timm] [--images 64] [--budget 4112] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def photos(folder: Path, count: int, size: int = 224) -> None:
    """``count`` 224-px RGB photos: crops and flips of scikit-image's colour photographs."""
    from PIL import Image
    from skimage import data

    sources = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.hubble_deep_field(),
               data.immunohistochemistry(), data.retina(), data.colorwheel()]
    sources = [s[..., :3] for s in sources if s.ndim == 3]
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image = sources[index % len(sources)]
        h, w = image.shape[:2]
        side = int(min(h, w) * rng.uniform(0.5, 1.0))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = Image.fromarray(image[top:top + side, left:left + side]).resize((size, size), Image.BILINEAR)
        if index % 2:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        crop.save(folder / f"photo_{index:03d}.png")


def network(family: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    if family == "timm":
        import timm

        return timm.create_model("resnet18", pretrained=False, num_classes=1000).eval()
    import torchvision

    return torchvision.models.resnet18(weights=None).eval()


def save(module: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, path)


def timed(command: list[str], env: dict) -> tuple[float, float, str]:
    """(wall seconds, peak resident GB, output) of a command under /usr/bin/time -v."""
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return wall, peak_kb / 1e6, done.stdout


def bare_loop(module: torch.nn.Module, passes: int, batch: int) -> float:
    """Seconds for ``passes`` forward passes of random 224-px images, channels-last, in batches of ``batch``."""
    module = module.to(memory_format=torch.channels_last).eval()
    images = torch.rand(batch, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        module(images[:2])  # warm-up
        start = time.perf_counter()
        done = 0
        while done < passes:
            take = min(batch, passes - done)
            module(images[:take])
            done += take
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("torchvision", "timm"), default="torchvision")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--budget", type=int, default=4112)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args()

    from zest_core.pipeline.device import effective_batch_size

    work = Path(tempfile.mkdtemp(prefix="zest-bench-224-"))
    photos(work / "photos", args.images)
    spec = (lambda p: f"timm:resnet18:{p}") if args.family == "timm" else (lambda p: f"resnet18:{p}")
    reference = network(args.family, 0)
    save(reference, work / "reference.safetensors")
    for name, noise in (("suspect", 0.01), ("suspect2", 0.02)):
        torch.manual_seed(100 + int(noise * 100))
        copy = network(args.family, 0)
        with torch.no_grad():
            for tensor in copy.parameters():
                tensor.add_(noise * tensor.std() * torch.randn_like(tensor))
        save(copy, work / f"{name}.safetensors")
    for seed in (1, 2, 3):
        save(network(args.family, seed), work / f"unrelated{seed}.safetensors")
    unrelated = [spec(work / f"unrelated{s}.safetensors") for s in (1, 2, 3)]
    env = dict(os.environ, TQDM_DISABLE="1", ZEST_CACHE_DIR=str(work / "cache"))
    base = [sys.executable, "-m", "zest_core.cli", "audit", spec(work / "reference.safetensors")]
    options = ["--unrelated", *unrelated, "--refset", str(work / "photos"), "--budget", str(args.budget), "--json"]

    batch = effective_batch_size(None, torch.device("cpu"), (3, 224, 224))
    sampled = 1024
    before = bare_loop(network(args.family, 0), sampled, batch) / sampled  # seconds per image
    wall, peak, output = timed([*base, spec(work / "suspect.safetensors"), *options], env)
    after = bare_loop(network(args.family, 0), sampled, batch) / sampled
    record = json.loads(output)
    queries = int(record["queries"]["now"]["images"])
    bare = (before + after) / 2 * queries
    # The cache's lever: the reference and the null computed once, then a new suspect costs its own queries.
    cached_wall, cached_peak, cached_output = timed([*base, spec(work / "suspect2.safetensors"), *options], env)
    cached_queries = int(json.loads(cached_output)["queries"]["now"]["images"])
    figures = {
        "family": args.family, "images": args.images, "budget": args.budget, "batch_size": batch,
        "threads": torch.get_num_threads(),
        "verdict": record.get("verdict") or record.get("decision", {}).get("verdict"),
        "p_value": record.get("p_value") or record.get("decision", {}).get("p_value"),
        "audit_wall_s": round(wall, 1), "audit_peak_gb": round(peak, 2), "forward_images": queries,
        "bare_loop_s": round(bare, 1), "bare_loop_sampled_passes": sampled, "bare_images_per_s": round(queries / bare, 1),
        "bare_images_per_s_before": round(1 / before, 1), "bare_images_per_s_after": round(1 / after, 1),
        "ratio_to_pure_inference": round(wall / bare, 3),
        "ratio_to_the_loop_before": round(wall / (before * queries), 3),
        "ratio_to_the_loop_after": round(wall / (after * queries), 3),
        "cached_audit_wall_s": round(cached_wall, 1), "cached_audit_peak_gb": round(cached_peak, 2),
        "cached_forward_images": cached_queries,
    }
    print(json.dumps(figures, indent=1))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"bench_224_{args.family}.json").write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
