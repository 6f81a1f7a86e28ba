"""Issue 9, items 4 and 5: the cache trusts no file that is not its key's, and never costs a result.

Item 4: a file read under a key must carry that key's inputs (fingerprints and parameters); model B's
signature copied under model A's key once made ``zest distance A B`` print 0.0. Item 5: an unwritable
cache folder once threw the computed result away (exit 2, naming a hidden temporary file), and the
temporary files of killed writers were never removed.
"""
from __future__ import annotations

import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from zest_core._shared.npzfile import NpzRecord
from zest_core import ReferenceSet, Signature, SignatureCache, compute_signature, zest_distance
from zest_core.cache import PAIRS_FILE, SEGMENTS_FILE, SIGNATURE_FILE
from zest_core.cli import main
from zest_core.methods.modeldiff import InputPairs, generate_pairs
from zest_core.sources.models import load_model
from zest_core.zoo.training import init_model

from conftest import make_cnn


def signature_file(folder: Path, signature: Signature) -> Path:
    """The cache file in ``folder`` that holds ``signature`` (by its model's fingerprint)."""
    (path,) = [p for p in folder.glob("*.zsig.npz") if Signature.load(p).model_fingerprint == signature.model_fingerprint]
    return path


def forget_probes() -> None:
    """Drop the probes kept in memory, as a new process would start, so that segments are read from disk."""
    import zest_core.pipeline.probe as probe_module

    probe_module._PROBES.clear()


# --- item 4: a file must be its key's ------------------------------------------------------------

def test_another_models_signature_under_a_key_is_recomputed_and_overwritten(digits_refset, small_config, isolated_cache):
    model_a, model_b = make_cnn(0), make_cnn(1)
    sig_a = compute_signature(model_a, digits_refset, small_config)
    sig_b = compute_signature(model_b, digits_refset, small_config)
    true_distance = zest_distance(sig_a, sig_b)
    path_a, path_b = signature_file(isolated_cache, sig_a), signature_file(isolated_cache, sig_b)
    shutil.copyfile(path_b, path_a)  # B's file under A's key: before the fix, d(A, B) came out 0.0

    with pytest.warns(UserWarning, match=r"does not hold the signature of its key \(its model_fingerprint is"):
        again = compute_signature(model_a, digits_refset, small_config)
    np.testing.assert_array_equal(again.matrix(), sig_a.matrix())
    assert zest_distance(again, sig_b) == pytest.approx(true_distance) and true_distance > 0.1
    assert Signature.load(path_a).model_fingerprint == sig_a.model_fingerprint  # overwritten with A's


@pytest.mark.parametrize("field", ["refset_fingerprint", "config"])
def test_a_signature_of_another_reference_set_or_config_under_a_key_is_recomputed(
    digits_refset, mnist_digits, small_config, isolated_cache, field
):
    model = make_cnn(0)
    sig = compute_signature(model, digits_refset, small_config)
    path = signature_file(isolated_cache, sig)
    if field == "config":
        other = compute_signature(model, digits_refset, small_config.replace(seed=1), cache=False)
    else:
        images, labels = mnist_digits
        other = compute_signature(model, ReferenceSet.from_arrays(images[100:106], labels[100:106]), small_config,
                                  cache=False)
    other.save(path)  # same model, other inputs: only the file's own fingerprints tell
    with pytest.warns(UserWarning, match=f"does not hold the signature of its key \\(its {field} is"):
        again = compute_signature(model, digits_refset, small_config)
    np.testing.assert_array_equal(again.matrix(), sig.matrix())


def test_cli_distance_is_not_fooled_by_a_copied_cache_file(tmp_path, capsys):
    """The issue's reproduction: B's cache file copied under A's key made `zest distance A B` print 0.0."""
    paths = {}
    for name, seed in (("a", 0), ("b", 1)):
        paths[name] = f"small_cnn:{tmp_path / name}.pt"
        torch.save(init_model("small_cnn", seed=seed).state_dict(), tmp_path / f"{name}.pt")
    cache = tmp_path / "cache"
    # Logit targets: untrained CNNs answer nearly uniform probabilities, and this test wants them far apart.
    argv = ["distance", paths["a"], paths["b"], "--refset", "mnist:8", "--samples", "50", "--targets", "logits",
            "--cache-dir", str(cache)]
    assert main(argv) == 0
    true_distance = float(capsys.readouterr().out)
    fingerprints = {name: load_model(spec).fingerprint for name, spec in paths.items()}
    files = {Signature.load(p).model_fingerprint: p for p in cache.glob("*.zsig.npz")}
    shutil.copyfile(files[fingerprints["b"]], files[fingerprints["a"]])

    assert main(argv) == 0
    captured = capsys.readouterr()
    assert float(captured.out) == pytest.approx(true_distance) and true_distance > 0.1
    assert captured.err.count("zest: warning:") == 1 and "does not hold the signature of its key" in captured.err


def test_a_segment_map_of_another_reference_set_under_a_key_is_recomputed(digits_refset, mnist_digits, small_config,
                                                                           isolated_cache):
    forget_probes()
    first = compute_signature(make_cnn(0), digits_refset, small_config)
    (path,) = isolated_cache.glob("*.segments.npz")
    images, labels = mnist_digits
    forget_probes()
    compute_signature(make_cnn(0), ReferenceSet.from_arrays(images[100:106], labels[100:106]), small_config)
    (other,) = [p for p in isolated_cache.glob("*.segments.npz") if p != path]
    shutil.copyfile(other, path)  # same shape (6 digits of 28×28): the shape check alone let it through
    forget_probes()
    with pytest.warns(UserWarning, match=r"does not hold the segmentation of its key \(its refset_fingerprint is"):
        again = compute_signature(make_cnn(1), digits_refset, small_config)
    np.testing.assert_array_equal(again.segments, first.segments)
    assert np.array_equal(SEGMENTS_FILE.read(path).arrays["segments"], first.segments)  # overwritten


def test_a_segment_map_without_its_keys_inputs_is_recomputed(digits_refset, small_config, isolated_cache):
    """A file of the earlier segment cache carries no fingerprints: it is segmented again, once."""
    forget_probes()
    first = compute_signature(make_cnn(0), digits_refset, small_config)
    (path,) = isolated_cache.glob("*.segments.npz")
    # As the store wrote it before issue 9: the segments alone.
    SignatureCache(isolated_cache).store(path.name[:40], SEGMENTS_FILE, NpzRecord({"segments": first.segments}, {}))
    forget_probes()
    with pytest.warns(UserWarning, match="it carries no refset_fingerprint"):
        compute_signature(make_cnn(1), digits_refset, small_config)
    forget_probes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rewritten with its inputs: read back without a word
        compute_signature(make_cnn(2), digits_refset, small_config)


def test_modeldiff_pairs_of_another_source_under_a_key_are_searched_again(digits_refset, isolated_cache):
    fast = {"steps": 2, "device": "cpu"}
    source, other = make_cnn(0), make_cnn(1)
    pairs = generate_pairs(source, digits_refset, **fast)
    generate_pairs(other, digits_refset, **fast)
    files = {InputPairs.load(p).source_fingerprint: p for p in isolated_cache.glob("*" + PAIRS_FILE.suffix)}
    (mine,) = [p for fp, p in files.items() if fp == pairs.source_fingerprint]
    (theirs,) = [p for fp, p in files.items() if fp != pairs.source_fingerprint]
    shutil.copyfile(theirs, mine)
    with pytest.warns(UserWarning, match=r"does not hold the ModelDiff pairs of its key \(its source_fingerprint is"):
        again = generate_pairs(source, digits_refset, **fast)
    np.testing.assert_array_equal(again.perturbed, pairs.perturbed)
    assert InputPairs.load(mine).source_fingerprint == pairs.source_fingerprint


# --- item 5: an unwritable folder costs no result; orphaned temporary files go ----------------------

def refuse_temporary_files(monkeypatch) -> None:
    """What a read-only folder does to atomic_write_bytes, for a test run as root (whom chmod does not stop)."""
    import zest_core._shared.atomic as atomic

    def mkstemp(dir=None, prefix="", suffix="", **_):
        raise PermissionError(13, "Permission denied", os.path.join(dir, f"{prefix}xxxxxxxx{suffix}"))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp)


def read_only(folder: Path):
    """``folder`` made read-only (0500), or the test skipped where that stops nothing (root)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root writes into a folder of mode 0500; the simulated variant covers this case")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o500)
    return folder


@pytest.mark.parametrize("how", ["simulated", "chmod"])
def test_an_unwritable_cache_still_prints_the_distance_and_warns_once(tmp_path, capsys, monkeypatch, how):
    cache = tmp_path / "cache"
    if how == "chmod":
        read_only(cache)
    else:
        refuse_temporary_files(monkeypatch)
    paths = []
    for name, seed in (("a", 0), ("b", 1)):
        torch.save(init_model("small_cnn", seed=seed).state_dict(), tmp_path / f"{name}.pt")
        paths.append(f"small_cnn:{tmp_path / name}.pt")
    try:
        code = main(["distance", *paths, "--refset", "mnist:8", "--samples", "50", "--targets", "logits",
                     "--cache-dir", str(cache)])
    finally:
        if how == "chmod":
            cache.chmod(0o700)
    captured = capsys.readouterr()
    assert code == 0, captured.err  # before the fix: 2, "Permission denied: '.../.<key>.zsig.npz.<random>.tmp'"
    assert float(captured.out) > 0.1
    warning_lines = [line for line in captured.err.splitlines() if line.startswith("zest: warning:")]
    assert len(warning_lines) == 1, captured.err  # two signatures and a segment map failed to write: one warning
    assert str(cache.absolute()) in warning_lines[0] and "--no-cache" in warning_lines[0] and "--cache-dir" in warning_lines[0]
    assert ".tmp" not in captured.err


def test_an_unwritable_cache_returns_the_signature_and_warns_once_per_folder(digits_refset, small_config, tmp_path,
                                                                             monkeypatch):
    refuse_temporary_files(monkeypatch)
    store = SignatureCache(tmp_path / "store")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = compute_signature(make_cnn(0), digits_refset, small_config, cache=store)
        compute_signature(make_cnn(1), digits_refset, small_config, cache=SignatureCache(tmp_path / "store"))
    messages = [str(w.message) for w in caught if "cannot write to the cache folder" in str(w.message)]
    assert len(messages) == 1 and str((tmp_path / "store").absolute()) in messages[0]
    assert first.num_images == len(digits_refset)
    assert store.store("0" * 40, SIGNATURE_FILE, first.to_record()) is None


def test_stale_temporary_files_are_removed_and_nothing_else(tmp_path):
    root = tmp_path / "cache"
    root.mkdir()
    key = "ab" * 20
    old = time.time() - 7 * 3600

    def make(name: str, age: float | None = old) -> Path:
        path = root / name
        path.write_bytes(b"x")
        if age is not None:
            os.utime(path, (age, age))
        return path

    stale = [make(f".{key}.zsig.npz.abcd_123.tmp"), make(f".{key}.segments.npz.k2j4h5g6.tmp"),
             make(f".{key}.mdpairs.npz.00000000.tmp")]
    kept = [
        make(f".{key}.zsig.npz.qwertyui.tmp", age=None),  # fresh: another process may be writing it now
        make(".notes.txt.abcdefgh.tmp"),  # a temporary name, but not of a cache file
        make(f".{key}.zsig.npz.abcdefgh.tmp.bak"),  # not a temporary name
        make(f"{key}.zsig.npz.abcdefgh.tmp"),  # no leading dot
        make(f".{key}.zsig.npz.ABCDEFGH.tmp"),  # not mkstemp's alphabet
        make("unrelated.txt"),
        make(f"{key}.zsig.npz"),  # a cache file itself
    ]
    outside = tmp_path / "precious.txt"
    outside.write_bytes(b"keep me")
    link = root / f".{key}.zsig.npz.linklink.tmp"
    link.symlink_to(outside)
    os.utime(link, (old, old), follow_symlinks=False)
    folder = root / f".{key}.zsig.npz.dirdirdi.tmp"
    folder.mkdir()
    os.utime(folder, (old, old))

    removed = SignatureCache(root).remove_stale_temporaries()
    assert sorted(removed) == sorted(stale)
    assert all(not p.exists() for p in stale) and all(p.exists() for p in kept)
    assert link.is_symlink() and outside.read_bytes() == b"keep me" and folder.is_dir()


def test_the_store_sweeps_its_folder_when_it_first_writes(digits_refset, small_config, tmp_path):
    root = tmp_path / "cache"
    root.mkdir()
    orphan = root / f".{'cd' * 20}.zsig.npz.orphan_1.tmp"  # a writer killed between mkstemp and os.replace
    orphan.write_bytes(b"half a file")
    os.utime(orphan, (time.time() - 7 * 3600,) * 2)
    compute_signature(make_cnn(0), digits_refset, small_config, cache=root)
    assert not orphan.exists() and len(list(root.glob("*.zsig.npz"))) == 1
    assert not list(root.glob(".*.tmp"))


# --- issue 22: quickshift of images from 224 px runs shrunk; the rule is in their keys ---------------

def test_the_quickshift_shrink_factor_is_part_of_the_keys_of_large_images_only(isolated_cache):
    from skimage import data, transform

    from zest_core import ZestConfig, segment_image
    from zest_core.pipeline.probe import config_key, keyed_segmentation_params, reference_segments

    config = ZestConfig()
    # Below 224 px the keys are what they were before the rule: the shipped MNIST signatures stay valid.
    for size in ((28, 28), (32, 32), (223, 300)):
        assert config_key(config, size) == config.fingerprint() and keyed_segmentation_params(config, size) == {}
    assert config_key(config, (224, 224)) == f"{config.fingerprint()}|quickshift-downscale=2"
    assert keyed_segmentation_params(config, (224, 224)) == {"downscale": 2}
    full = config.replace(segmentation_params={"downscale": 1})  # the full-size quickshift, asked for
    assert config_key(full, (224, 224)) == full.fingerprint() != config.fingerprint()

    photos = np.stack([(transform.resize(image, (224, 224, 3), anti_aliasing=True) * 255).astype(np.uint8)
                       for image in (data.astronaut(), data.chelsea())])
    refset = ReferenceSet.from_arrays(photos)
    # A segmentation made before the rule, under the key of that time (here: zeros, to tell it apart).
    cache = SignatureCache(isolated_cache)
    old_identity = {"refset_fingerprint": refset.fingerprint(), "segmentation": "quickshift", "segmentation_params": {},
                    "seed": 0}
    old_key = SignatureCache.segments_key(refset.fingerprint(), "quickshift", {}, 0)
    cache.store(old_key, SEGMENTS_FILE, NpzRecord(arrays={"segments": np.zeros((2, 224, 224), np.int32)},
                                                  meta=old_identity))
    forget_probes()
    segments = reference_segments(refset, config, cache=cache)
    np.testing.assert_array_equal(segments, np.stack([segment_image(image) for image in photos]))


def test_signatures_whose_super_pixels_differ_are_not_compared(digits_refset, small_config):
    import dataclasses

    from zest_core import IncompatibleSignaturesError

    signature = compute_signature(make_cnn(0), digits_refset, small_config, cache=False)
    other = dataclasses.replace(signature, segments=signature.segments[:, ::-1].copy())  # same config, other segments
    with pytest.raises(IncompatibleSignaturesError, match="super-pixels differ"):
        zest_distance(signature, other)
    # Equal arrays, not the same object, are compared: 0 up to the rounding of the cosine (float64 sums in any
    # order: well under 1e-12).
    assert zest_distance(signature, dataclasses.replace(signature, segments=signature.segments.copy())) == pytest.approx(
        0.0, abs=1e-12)
