"""The model formats auditors hold: safetensors, Hugging Face and timm folders, timm specs, torch.export.

Every model is built here from a config with random weights and saved with ``save_pretrained``,
``safetensors.torch.save_file``, ``torch.save``, ``torch.export.save`` or ``torch.jit.save``:
nothing is downloaded.

Tolerance of "the same signature": every format runs the same float32 operators on the same
weights, so the scores agree to float32 rounding (a relative 1e-6 at most, from a different
operator order in a traced or exported graph). The local models are least-squares fits of those
scores, linear in them, so the signatures differ by the same relative amount, and their cosine
distance by its square: 1e-6 is a bound with room to spare, and independently trained models sit
orders of magnitude above it.
"""
from __future__ import annotations

import json
import os
import pickle
import socket
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_cnn
from zest_core import ModelLoadError, ReferenceSet, ZestConfig, compute_signature, load_model, zest_distance
from zest_core.hub.catalog import load_hub

safetensors_torch = pytest.importorskip("safetensors.torch")
transformers = pytest.importorskip("transformers")
timm = pytest.importorskip("timm")

SAME = 1e-6  # cosine distance; see the module docstring


def _tiny_hf_resnet(num_labels: int = 3, seed: int = 0) -> torch.nn.Module:
    """A two-stage transformers ResNet image classifier with random weights (a few thousand parameters)."""
    torch.manual_seed(seed)
    config = transformers.AutoConfig.for_model(
        "resnet", num_labels=num_labels, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
        id2label={i: f"class-{i}" for i in range(num_labels)}, label2id={f"class-{i}": i for i in range(num_labels)},
    )
    return transformers.AutoModelForImageClassification.from_config(config).eval()


def save_hf_folder(folder: Path, model: torch.nn.Module, size: int = 32) -> Path:
    """``save_pretrained`` plus a preprocessor config of the given size and a (0.5, 0.25) normalisation."""
    model.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "do_normalize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25],
        "do_resize": True, "size": {"height": size, "width": size},
    }))
    return folder


@pytest.fixture(scope="module")
def rgb_refset(mnist_digits) -> ReferenceSet:
    """Six real digits, 32×32, as RGB (the channels coloured differently so that all three matter)."""
    images, labels = mnist_digits
    index = [int(np.flatnonzero(labels == c)[1]) for c in range(6)]
    padded = np.pad(images[index], ((0, 0), (2, 2), (2, 2))).astype(np.float64) / 255
    rgb = np.stack([padded, 0.6 * padded + 0.2, 1 - 0.5 * padded], axis=-1)
    return ReferenceSet.from_arrays(rgb, labels[index], provenance="rgb digits")


@pytest.fixture(scope="module")
def config() -> ZestConfig:
    return ZestConfig(num_samples=64, batch_size=64, device="cpu", targets="logits")


def _signatures_agree(models, refset, config) -> None:
    signatures = [compute_signature(m, refset, config, cache=False) for m in models]
    for other in signatures[1:]:
        assert zest_distance(signatures[0], other) < SAME


# --- the same function in every format ---------------------------------------------------------------------


def test_a_small_cnn_has_one_signature_as_pt_safetensors_pt2_and_torchscript(tmp_path, digits_refset, small_config):
    network = make_cnn(seed=3)
    state = network.state_dict()
    torch.save(state, tmp_path / "w.pt")
    safetensors_torch.save_file(state, tmp_path / "w.safetensors")
    safetensors_torch.save_file(state, tmp_path / "named.safetensors", metadata={"architecture": "small_cnn"})
    example = torch.rand(2, 1, 28, 28)
    torch.jit.save(torch.jit.trace(network, example), tmp_path / "w.ts")
    program = torch.export.export(network, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, tmp_path / "w.pt2")
    models = [
        load_model(f"small_cnn:{tmp_path / 'w.pt'}"),
        load_model(f"small_cnn:{tmp_path / 'w.safetensors'}"),
        load_model(tmp_path / "named.safetensors"),  # the architecture from the file's own metadata
        load_model(tmp_path / "w.ts"),
        load_model(tmp_path / "w.pt2", trust_pickle=True),
    ]
    _signatures_agree(models, digits_refset, small_config)
    # A fingerprint is the file's content: five files, five fingerprints.
    assert len({m.fingerprint for m in models}) == 5


def test_a_timm_network_has_one_signature_as_spec_folder_and_export(tmp_path, rgb_refset, config):
    torch.manual_seed(1)
    network = timm.create_model("resnet18", pretrained=False, num_classes=5).eval()
    safetensors_torch.save_file(network.state_dict(), tmp_path / "r18.safetensors")
    torch.save(network.state_dict(), tmp_path / "r18.pt")
    from timm.models._hub import save_for_hf

    save_for_hf(network, tmp_path / "folder", safe_serialization=True)
    shape = {"input_shape": (3, 32, 32)}  # resnet18 takes any size; 32 px keeps the test fast
    from_spec = load_model(f"timm:resnet18:{tmp_path / 'r18.safetensors'}", **shape)
    # timm's pretrained config for resnet18: 224 px, ImageNet mean and std.
    plain = load_model(f"timm:resnet18:{tmp_path / 'r18.pt'}")
    assert plain.input_shape == (3, 224, 224) and len(plain.class_names) == 5
    np.testing.assert_allclose(plain.normalization[0], (0.485, 0.456, 0.406))
    models = [from_spec, load_model(f"timm:resnet18:{tmp_path / 'r18.pt'}", **shape),
              load_model(tmp_path / "folder", **shape)]
    _signatures_agree(models, rgb_refset, config)


def test_a_hugging_face_folder_is_the_network_it_was_saved_from(tmp_path, rgb_refset, config):
    network = _tiny_hf_resnet()
    folder = save_hf_folder(tmp_path / "hf", network)
    loaded = load_model(folder)
    assert loaded.input_shape == (3, 32, 32)
    assert loaded.class_names == ["class-0", "class-1", "class-2"]
    images = torch.rand(4, 3, 32, 32)
    # The folder's preprocessor normalises (x - 0.5) / 0.25 before the network: scores are the network's.
    expected = network(pixel_values=(images - 0.5) / 0.25).logits
    torch.testing.assert_close(loaded(images), expected, rtol=1e-5, atol=1e-6)

    class Reference(torch.nn.Module):
        def forward(self, x):
            return network(pixel_values=(x - 0.5) / 0.25).logits

    _signatures_agree([loaded, Reference()], rgb_refset, config)


def shard(folder: Path) -> None:
    """Split a folder's model.safetensors into two shards and their index, as save_pretrained does for big models."""
    state = safetensors_torch.load_file(folder / "model.safetensors")
    names = list(state)
    halves = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    for file, keys in halves.items():
        safetensors_torch.save_file({k: state[k] for k in keys}, folder / file, metadata={"format": "pt"})
    (folder / "model.safetensors").unlink()
    weight_map = {k: file for file, keys in halves.items() for k in keys}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


def test_sharded_hugging_face_weights_load_like_one_file(tmp_path):
    network = _tiny_hf_resnet(seed=2)
    network.save_pretrained(tmp_path / "one")
    network.save_pretrained(tmp_path / "sharded")
    shard(tmp_path / "sharded")
    images = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(load_model(tmp_path / "sharded")(images), load_model(tmp_path / "one")(images))


def test_the_fingerprint_follows_the_weights_and_the_preprocessor(tmp_path):
    first = save_hf_folder(tmp_path / "a", _tiny_hf_resnet(seed=0))
    fingerprint = load_model(first).fingerprint
    assert load_model(first).fingerprint == fingerprint  # deterministic
    other = save_hf_folder(tmp_path / "b", _tiny_hf_resnet(seed=1))
    assert load_model(other).fingerprint != fingerprint
    resized = save_hf_folder(tmp_path / "c", _tiny_hf_resnet(seed=0), size=48)
    assert load_model(resized).fingerprint != fingerprint


# --- bad files: clear errors, and no pickle runs ---------------------------------------------------------


@pytest.fixture
def no_pickle(monkeypatch):
    """Fail the test if anything is unpickled."""

    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)


def _raw_safetensors(path: Path, header: dict, data: bytes) -> Path:
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)
    return path


def test_a_truncated_safetensors_file_names_the_file(tmp_path, no_pickle):
    safetensors_torch.save_file(make_cnn(seed=0).state_dict(), tmp_path / "w.safetensors")
    whole = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ModelLoadError, match=r"cut\.safetensors.*truncated"):
        load_model(f"small_cnn:{tmp_path / 'cut.safetensors'}")
    (tmp_path / "stub.safetensors").write_bytes(whole[:5])
    with pytest.raises(ModelLoadError, match=r"stub\.safetensors: not a safetensors file"):
        load_model(f"small_cnn:{tmp_path / 'stub.safetensors'}")


def test_a_header_claiming_a_trillion_elements_is_refused_before_any_allocation(tmp_path, no_pickle):
    path = _raw_safetensors(tmp_path / "huge.safetensors",
                            {"w": {"dtype": "F32", "shape": [1_000_000, 1_000_000], "data_offsets": [0, 16]}}, b"\0" * 16)
    with pytest.raises(ModelLoadError, match=r"huge\.safetensors: tensor 'w' declares .*1,000,000,000,000 elements"):
        load_model(f"small_cnn:{path}")


def test_an_unhandled_dtype_and_a_header_past_the_end_are_named(tmp_path, no_pickle):
    path = _raw_safetensors(tmp_path / "c.safetensors", {"w": {"dtype": "C64", "shape": [2], "data_offsets": [0, 16]}},
                            b"\0" * 16)
    with pytest.raises(ModelLoadError, match=r"c\.safetensors: tensor 'w' has dtype 'C64', which is not handled"):
        load_model(f"resnet18:{path}")
    (tmp_path / "long.safetensors").write_bytes(struct.pack("<Q", 10**12) + b"{}")
    with pytest.raises(ModelLoadError, match=r"long\.safetensors: .*header claims 1,000,000,000,000 bytes"):
        load_model(f"small_cnn:{tmp_path / 'long.safetensors'}")


def test_a_bare_safetensors_file_asks_for_its_architecture(tmp_path, no_pickle):
    safetensors_torch.save_file(make_cnn(seed=0).state_dict(), tmp_path / "w.safetensors")
    with pytest.raises(ModelLoadError, match=r"w\.safetensors: is a safetensors file: weights without their architecture"):
        load_model(tmp_path / "w.safetensors")


def test_weights_that_do_not_fit_the_timm_architecture_are_named(tmp_path):
    safetensors_torch.save_file(make_cnn(seed=0).state_dict(), tmp_path / "w.safetensors")
    with pytest.raises(ModelLoadError, match=r"w\.safetensors: the weights do not fit timm architecture 'resnet18'"):
        load_model(f"timm:resnet18:{tmp_path / 'w.safetensors'}")
    with pytest.raises(ModelLoadError, match=r"unknown timm architecture 'resnet18x' \(close names: resnet18"):
        load_model(f"timm:resnet18x:{tmp_path / 'w.safetensors'}")
    with pytest.raises(ModelLoadError, match=r"timm:resnet18: expected timm:NAME:PATH"):
        load_model("timm:resnet18")


def test_a_text_model_folder_is_not_an_image_classifier(tmp_path, no_pickle):
    config = transformers.AutoConfig.for_model("bert", vocab_size=50, hidden_size=8, num_hidden_layers=1,
                                               num_attention_heads=1, intermediate_size=8)
    transformers.AutoModelForSequenceClassification.from_config(config).save_pretrained(tmp_path / "bert")
    with pytest.raises(ModelLoadError, match=r"bert: its config.json describes a 'bert' model .*not an image classifier"):
        load_model(tmp_path / "bert")


def test_a_config_that_needs_custom_code_is_refused(tmp_path, no_pickle):
    folder = save_hf_folder(tmp_path / "custom", _tiny_hf_resnet())
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForImageClassification": "modeling_evil.Evil"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=r"custom: its config.json needs custom code"):
        load_model(folder)


def test_a_folder_holding_only_pytorch_model_bin_needs_trust_pickle(tmp_path, no_pickle):
    folder = tmp_path / "pickled"
    network = _tiny_hf_resnet()
    network.save_pretrained(folder)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not read: refused before any unpickling")
    with pytest.raises(ModelLoadError, match=r"pytorch_model\.bin: the folder's only weights are a pickle.*trust-pickle"):
        load_model(folder)


def test_a_trusted_pytorch_model_bin_loads(tmp_path):
    folder = tmp_path / "pickled"
    network = _tiny_hf_resnet()
    network.save_pretrained(folder)
    (folder / "model.safetensors").unlink()
    torch.save(network.state_dict(), folder / "pytorch_model.bin")
    images = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(load_model(folder, trust_pickle=True)(images), network(pixel_values=images).logits)


def test_a_pt2_program_needs_trust_pickle(tmp_path, no_pickle):
    network = make_cnn(seed=0)
    program = torch.export.export(network, (torch.rand(2, 1, 28, 28),))
    with open(tmp_path / "m.pt2", "wb") as stream:  # torch.export.save pickles; write before the guard matters
        torch.export.save(program, stream)
    with pytest.raises(ModelLoadError, match=r"m\.pt2: is a torch.export program.*arbitrary code.*--trust-pickle"):
        load_model(tmp_path / "m.pt2")


def test_shards_outside_the_folder_are_refused(tmp_path):
    folder = tmp_path / "sharded"
    _tiny_hf_resnet().save_pretrained(folder)
    shard(folder)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    first = next(iter(index["weight_map"]))
    index["weight_map"][first] = "../elsewhere.safetensors"
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelLoadError, match=r"expected shard file names in the folder"):
        load_model(folder)


# --- offline, and optional ----------------------------------------------------------------------------


def test_loading_a_hugging_face_folder_makes_no_request(tmp_path, monkeypatch):
    folder = save_hf_folder(tmp_path / "hf", _tiny_hf_resnet())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")  # a closed port: any request would fail there
    attempts: list[object] = []

    def record(kind):
        def attempt(*args, **kwargs):
            attempts.append((kind, args[1:] if kind == "connect" else args))
            raise OSError("network disabled by the test")
        return attempt

    monkeypatch.setattr(socket.socket, "connect", record("connect"))
    monkeypatch.setattr(socket, "getaddrinfo", record("getaddrinfo"))
    monkeypatch.setattr(socket, "create_connection", record("create_connection"))
    loaded = load_model(folder)
    loaded(torch.rand(1, 3, 32, 32))
    assert attempts == []


def test_zest_core_imports_and_explains_without_the_optional_packages(tmp_path):
    folder = save_hf_folder(tmp_path / "hf", _tiny_hf_resnet())
    safetensors_torch.save_file(make_cnn(seed=0).state_dict(), tmp_path / "w.safetensors")
    script = f"""
import sys
for name in ("transformers", "timm", "safetensors"):
    sys.modules[name] = None  # an import of any of them now fails, as when they are not installed
import zest_core
from zest_core import ModelLoadError, load_model
for spec in ({str(folder)!r}, "timm:resnet18:{tmp_path / 'w.safetensors'}", "small_cnn:{tmp_path / 'w.safetensors'}"):
    try:
        load_model(spec)
    except ModelLoadError as error:
        print("refused:", error)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stdout
    assert "pip install 'zest-explorer[hf]'" in lines[0]
    assert "pip install 'zest-explorer[timm]'" in lines[1]
    assert "needs the safetensors package" in lines[2]


# --- everywhere a model goes ----------------------------------------------------------------------------


def test_a_hub_folder_lists_model_folders_and_safetensors_files(tmp_path):
    hub = tmp_path / "hub"
    hub.mkdir()
    save_hf_folder(hub / "hf-model", _tiny_hf_resnet())
    safetensors_torch.save_file(make_cnn(seed=0).state_dict(), hub / "cnn.safetensors", metadata={"architecture": "small_cnn"})
    (hub / "notes").mkdir()  # a folder without config.json is no model
    found = load_hub(hub)
    assert [m.name for m in found.models] == ["cnn.safetensors", "hf-model"]
    assert [m.load().input_shape for m in found.models] == [(1, 28, 28), (3, 32, 32)]


def test_the_cli_compares_a_safetensors_file_with_a_state_dict_and_a_folder_with_itself(tmp_path, capsys):
    from zest_core.cli import main

    state = make_cnn(seed=0).state_dict()
    safetensors_torch.save_file(state, tmp_path / "a.safetensors")
    torch.save(state, tmp_path / "b.pt")
    code = main(["distance", f"small_cnn:{tmp_path / 'a.safetensors'}", f"small_cnn:{tmp_path / 'b.pt'}",
                 "--refset", "mnist:6", "--samples", "64", "--json", "--no-cache"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["distance"] < SAME


def test_a_timm_fingerprint_names_the_architecture_as_well_as_the_weights(tmp_path):
    torch.manual_seed(0)
    network = timm.create_model("resnet18", pretrained=False, num_classes=3).eval()
    safetensors_torch.save_file(network.state_dict(), tmp_path / "w.safetensors")
    from_timm = load_model(f"timm:resnet18:{tmp_path / 'w.safetensors'}")
    again = load_model(f"timm:resnet18:{tmp_path / 'w.safetensors'}")
    assert from_timm.fingerprint == again.fingerprint
    # The same bytes under torchvision's resnet18 (whose keys timm's resnet18 shares) are another function's.
    from_torchvision = load_model(f"resnet18:{tmp_path / 'w.safetensors'}")
    assert from_torchvision.fingerprint != from_timm.fingerprint
