"""Numbers and cache keys pinned before the layout move (issue 10): the move must not change them.

``tests/make_layout_pins.py`` wrote ``tests/data/layout_pins.npz`` on the commit before the move
(ecf8b20). The signatures are computed in float64 end to end (model and images), so the pins do not
depend on a CPU's float32 kernels: what remains is float64 rounding in a different summation order,
far below the 1e-9 tolerance used here.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from zest_core import (
    Signature,
    SignatureCache,
    compute_signature,
    load_zoo_model,
    model_fingerprint,
    zest_distance,
)

from make_layout_pins import MODELS, pinned_config, pinned_refset

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def pins():
    with np.load(DATA / "layout_pins.npz", allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


@pytest.fixture(scope="module")
def signatures():
    refset = pinned_refset()
    configs = {"zest": pinned_config(), "lime": pinned_config(mode="lime", targets="probabilities")}
    return {
        (tag, name): compute_signature(load_zoo_model(name).double(), refset, config, cache=False)
        for tag, config in configs.items()
        for name in MODELS
    }


def test_signatures_are_unchanged_by_the_move(pins, signatures):
    for (tag, name), signature in signatures.items():
        np.testing.assert_allclose(signature.matrix(), pins[f"{tag}/{name}/matrix"], rtol=1e-9, atol=1e-12)


def test_distances_are_unchanged_by_the_move(pins, signatures):
    distances = json.loads(str(pins["distances"]))
    assert len(distances) == 2 * 6 * 2
    for key, expected in distances.items():
        tag, a, b, metric = key.split("|")
        got = zest_distance(signatures[tag, a], signatures[tag, b], metric=metric)
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), key


def test_cache_keys_are_unchanged_by_the_move(pins):
    keys = json.loads(str(pins["keys"]))
    assert model_fingerprint(load_zoo_model("cnn-s0")) == keys["model"]
    assert pinned_refset().fingerprint() == keys["refset"]
    assert pinned_config().fingerprint() == keys["config"]
    assert SignatureCache.key(keys["model"], keys["refset"], keys["config"]) == keys["cache_key"]


def test_a_signature_file_written_before_the_move_still_loads(pins):
    old = Signature.load(DATA / "old_format_signature.zsig.npz")
    np.testing.assert_array_equal(old.matrix(), pins["zest/cnn-s0/matrix"])
    assert old.config == pinned_config()
