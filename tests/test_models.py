"""``load_model`` and ``Classifier``: every source gives the original model's scores, and every bad file a clear error.

Known answers: a loaded model's scores equal those of the module it was saved from; an ONNX linear
classifier's equal numpy's ``x @ W.T + b``; a SmallCNN exported to ONNX has the same Zest signature
as the PyTorch module (the architecture-independence the product rests on).
"""
from __future__ import annotations

import hashlib
import shutil
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from zest_core import Classifier, ModelLoadError, compute_signature, load_model, model_fingerprint, zest_distance
from zest_core.sources.architectures import ResNet20, SmallCNN
from zest_core.sources.models import IMAGENET_NORMALIZATION, ModuleClassifier

from conftest import make_cnn

DIGITS = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_state(model: nn.Module, path: Path, wrap: str | None = None) -> Path:
    state = model.state_dict()
    torch.save(state if wrap is None else {wrap: state, "epoch": 3}, path)
    return path


def assert_same_scores(loaded: Classifier, original: nn.Module, x: torch.Tensor = DIGITS) -> None:
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), original.eval()(x), rtol=1e-5, atol=1e-6)


# --- ARCH:PATH ----------------------------------------------------------------------------------------


def test_state_dict_of_a_project_architecture_round_trips(tmp_path):
    original = make_cnn(seed=0)
    path = save_state(original, tmp_path / "a.pt")
    loaded = load_model(f"small_cnn:{path}")
    assert isinstance(loaded, Classifier) and isinstance(loaded, nn.Module)
    assert isinstance(loaded.module, SmallCNN)
    assert_same_scores(loaded, original)
    assert loaded.input_shape == (1, 28, 28)
    assert loaded.class_names == [str(k) for k in range(10)]
    assert loaded.outputs == "logits" and loaded.normalization is None
    assert loaded.fingerprint == sha256(path) and str(path) in loaded.source


def test_classes_and_channels_are_read_from_the_weights(tmp_path):
    torch.manual_seed(0)
    original = ResNet20(num_classes=7, in_channels=3)
    loaded = load_model(f"resnet20:{save_state(original, tmp_path / 'r.pt')}", class_names=list("abcdefg"))
    assert loaded.input_shape == (3, 32, 32) and loaded.class_names == list("abcdefg")
    assert_same_scores(loaded, original, torch.rand(3, 3, 32, 32))


@pytest.mark.parametrize("wrap", ["state_dict", "net", "model"])
def test_checkpoints_wrapping_the_state_dict_are_accepted(tmp_path, wrap):
    original = make_cnn(seed=1)
    assert_same_scores(load_model(f"small_cnn:{save_state(original, tmp_path / 'c.pt', wrap)}"), original)


def test_data_parallel_prefixes_are_stripped(tmp_path):
    original = make_cnn(seed=2)
    path = tmp_path / "dp.pt"
    torch.save({f"module.{k}": v for k, v in original.state_dict().items()}, path)
    assert_same_scores(load_model(f"small_cnn:{path}"), original)


def test_torchvision_resnet18_state_dict_round_trips_with_imagenet_normalisation(tmp_path):
    torch.manual_seed(0)
    original = torchvision.models.resnet18(num_classes=10).eval()
    loaded = load_model(f"resnet18:{save_state(original, tmp_path / 'r18.pt')}")
    assert isinstance(loaded.module, torchvision.models.ResNet) and loaded.module.fc.out_features == 10
    assert loaded.normalization == IMAGENET_NORMALIZATION and loaded.input_shape is None
    x = torch.rand(2, 3, 32, 32)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET_NORMALIZATION)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), original((x - mean) / std), rtol=1e-5, atol=1e-5)
        # Another normalisation is honoured, and changes the fingerprint (it changes the scores).
        plain = load_model(f"resnet18:{tmp_path / 'r18.pt'}", normalization=((0, 0, 0), (1, 1, 1)))
        torch.testing.assert_close(plain(x), original(x), rtol=1e-5, atol=1e-5)
    assert plain.fingerprint != loaded.fingerprint


def test_weights_that_do_not_fit_name_the_file_architecture_and_keys(tmp_path):
    path = save_state(make_cnn(seed=0), tmp_path / "a.pt")
    with pytest.raises(ModelLoadError, match="do not fit architecture 'resnet20'") as info:
        load_model(f"resnet20:{path}")
    message = str(info.value)
    assert message.startswith(str(path))
    assert "missing: 'bn1.weight'" in message and "unexpected: 'conv1.bias'" in message and "more" in message

    # SmallCNN's classes and channels are read from the weights, not its width: narrower weights do not fit.
    narrow = save_state(SmallCNN(width=8), tmp_path / "narrow.pt")
    shapes = r"of another shape: 'conv1.weight' \(8, 1, 3, 3\) in the file vs \(16, 1, 3, 3\)"
    with pytest.raises(ModelLoadError, match=shapes):
        load_model(f"small_cnn:{narrow}")


# --- TorchScript, fingerprints --------------------------------------------------------------------------


def trace(model: nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(model.eval(), DIGITS).save(str(path))
    return path


def test_torchscript_round_trips_and_fingerprints_follow_the_file_bytes(tmp_path):
    original = make_cnn(seed=0)
    path = trace(original, tmp_path / "a_script.pt")
    loaded = load_model(path)  # a Path works as well as a str
    assert_same_scores(loaded, original)
    assert loaded.fingerprint == sha256(path) and loaded.input_shape is None

    copy = tmp_path / "copy.pt"
    shutil.copy(path, copy)
    other = trace(make_cnn(seed=1), tmp_path / "b_script.pt")
    assert load_model(copy).fingerprint == loaded.fingerprint
    assert load_model(other).fingerprint != loaded.fingerprint
    a, b = save_state(make_cnn(seed=0), tmp_path / "a.pt"), save_state(make_cnn(seed=1), tmp_path / "b.pt")
    assert load_model(f"small_cnn:{a}").fingerprint != load_model(f"small_cnn:{b}").fingerprint


# --- pickled whole models ---------------------------------------------------------------------------------


def test_a_pickled_model_is_refused_unless_trusted(tmp_path):
    original = make_cnn(seed=3)
    path = tmp_path / "whole.pt"
    torch.save(original, path)
    for spec in (str(path), f"small_cnn:{path}"):
        with pytest.raises(ModelLoadError, match="arbitrary code") as info:
            load_model(spec)
        message = str(info.value)
        assert message.startswith(str(path)) and "trust_pickle=True" in message and "SmallCNN" in message
        trusted = load_model(spec, trust_pickle=True)
        assert_same_scores(trusted, original)
        assert trusted.fingerprint == sha256(path)


# --- bad files and specs ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    tmp_path = tmp_path_factory.mktemp("bad")
    script = trace(make_cnn(seed=0), tmp_path / "script.pt")
    files = {
        "junk": tmp_path / "junk.pt",
        "truncated": tmp_path / "truncated.pt",
        "state": save_state(make_cnn(seed=0), tmp_path / "state.pt"),
        "script": script,
        "onnx": tmp_path / "junk.onnx",
    }
    files["junk"].write_bytes(np.random.default_rng(0).bytes(2000))
    files["truncated"].write_bytes(script.read_bytes()[:3000])
    files["onnx"].write_bytes(b"not a protobuf at all")
    return files


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("{junk}", "not a TorchScript model, an ONNX model"),
        ("{truncated}", "not a TorchScript model, an ONNX model"),
        ("{state}", "pass it as ARCH:"),
        ("{onnx}", "not a readable ONNX model"),
        ("small_cnn:{junk}", "not a readable state_dict file"),
        ("small_cnn:{script}", "it is a TorchScript model; pass it without 'small_cnn:'"),
        ("{missing}", "no such file"),
        ("small_cnn:{missing}", "no such file"),
        ("{folder}", "is a directory"),
    ],
)
def test_bad_files_raise_a_model_load_error_naming_the_file(tmp_path, bad_files, spec, expected):
    names = {**bad_files, "missing": tmp_path / "missing.pt", "folder": tmp_path}
    spec = spec.format(**names)
    path = spec.removeprefix("small_cnn:")
    with pytest.raises(ModelLoadError) as info:
        load_model(spec)
    assert str(info.value).startswith(path) and expected in str(info.value)
    assert isinstance(info.value, ValueError)


def test_an_unknown_architecture_is_named_with_the_known_ones(bad_files):
    spec = f"resnet99:{bad_files['state']}"
    known = "unknown architecture 'resnet99'; expected one of lenet5, resnet20, small_cnn"
    with pytest.raises(ModelLoadError, match=known) as info:
        load_model(spec)
    assert str(info.value).startswith(spec) and "resnet18" in str(info.value)


def test_a_spec_that_is_neither_text_nor_callable_is_a_type_error():
    with pytest.raises(TypeError, match="got int"):
        load_model(3)


# --- callables, nn.Modules and the Classifier itself -------------------------------------------------


def test_a_module_is_wrapped_as_a_module_and_fingerprinted_by_its_weights(digits_refset, small_config):
    original = make_cnn(seed=0)
    loaded = load_model(original)
    assert isinstance(loaded, ModuleClassifier) and loaded.module is original
    assert loaded.fingerprint == model_fingerprint(original)
    assert_same_scores(loaded, original)
    with torch.no_grad():
        original.fc2.bias.add_(1.0)  # trained in place: the fingerprint follows the weights
    assert loaded.fingerprint == model_fingerprint(original) != model_fingerprint(make_cnn(seed=0))
    assert load_model(loaded) is loaded  # a Classifier with nothing to add is returned as it is


def test_a_bare_callable_has_no_fingerprint_and_is_never_cached(digits_refset, small_config, isolated_cache):
    network = make_cnn(seed=0)
    loaded = load_model(lambda x: network(x), class_names=list("abcdefghij"))
    assert type(loaded) is Classifier and not isinstance(loaded, nn.Module) and loaded.module is None
    assert loaded.fingerprint is None and model_fingerprint(loaded) is None
    signature = compute_signature(loaded, digits_refset, small_config)
    assert signature.model_fingerprint is None and signature.class_names == list("abcdefghij")
    assert not isolated_cache.exists() or not list(isolated_cache.glob("*.zsig.npz"))  # segments may be cached
    reference = compute_signature(network, digits_refset, small_config, cache=False)
    np.testing.assert_allclose(signature.matrix(), reference.matrix(), rtol=1e-9, atol=1e-12)


def test_normalization_is_applied_before_the_model_and_checks_channels():
    loaded = Classifier(lambda x: x.flatten(1), normalization=((0.5,), (0.25,)), outputs="probabilities")
    x = torch.rand(2, 1, 3, 3)
    torch.testing.assert_close(loaded(x), ((x - 0.5) / 0.25).flatten(1))
    assert loaded.outputs == "probabilities"
    with pytest.raises(ValueError, match=r"expected images \[B, 1, H, W\]"):
        loaded(torch.rand(2, 3, 3, 3))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"outputs": "scores"}, "outputs: expected one of 'logits', 'probabilities', got 'scores'"),
        ({"input_shape": (28, 28)}, r"input_shape: expected \(C, H, W\)"),
        ({"class_names": ["a", "b"], "num_classes": 3}, "expected 3 names"),
        ({"class_names": "abc"}, "got the string"),
        ({"normalization": ((0.5, 0.5), (0.2,))}, "a mean and a positive std per channel"),
        ({"normalization": ((0.5,), (0.0,))}, "a mean and a positive std per channel"),
    ],
)
def test_invalid_classifier_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Classifier(lambda x: x, **kwargs)
    with pytest.raises(TypeError, match="model: expected a callable"):
        Classifier("not a model")


# --- endpoints and the zoo: dispatched to their modules ------------------------------------------------


class FakeRemote:
    fingerprint = "remote-fp"
    class_names = ["cat", "dog"]
    input_shape = (3, 8, 8)
    outputs = "probabilities"
    source = "endpoint http://example.invalid"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 2), 0.5)


def test_http_specs_go_to_the_endpoint_module(monkeypatch):
    calls = []
    fake = types.ModuleType("zest_core.sources.endpoint")
    fake.load_endpoint = lambda spec, **kwargs: calls.append((spec, kwargs)) or FakeRemote()
    monkeypatch.setitem(sys.modules, "zest_core.sources.endpoint", fake)
    loaded = load_model("https://example.invalid/predict")
    assert calls == [("https://example.invalid/predict", {"input_shape": None})]
    assert (loaded.fingerprint, loaded.class_names, loaded.input_shape, loaded.outputs) == (
        "remote-fp", ["cat", "dog"], (3, 8, 8), "probabilities",
    )
    assert loaded.source == FakeRemote.source and loaded(torch.rand(4, 3, 8, 8)).shape == (4, 2)


def test_zoo_specs_go_to_the_loader_the_zoo_registered(monkeypatch):
    from zest_core.sources import models as models_module
    from zest_core.zoo import load_zoo_model

    assert models_module.SPEC_SCHEMES["zoo"] is load_zoo_model  # registered by importing zest_core
    calls = []
    monkeypatch.setitem(
        models_module.SPEC_SCHEMES, "zoo", lambda name: calls.append(name) or Classifier(FakeRemote(), source=f"zoo {name}")
    )
    assert load_model("zoo:mnist_a@epoch3").source == "zoo mnist_a@epoch3"
    assert calls == ["mnist_a@epoch3"]


def test_spec_schemes_cannot_shadow_an_architecture():
    from zest_core.sources.models import register_spec_scheme

    with pytest.raises(ValueError, match="scheme: expected a name that is not an architecture"):
        register_spec_scheme("small_cnn", lambda rest: None)


# --- ONNX ------------------------------------------------------------------------------------------------


def linear_onnx(path: Path, batch: int | str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A Flatten + Gemm classifier of 1×28×28 images into 10 classes, built with onnx's helper API."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weight = rng.standard_normal((10, 784)).astype(np.float32)
    bias = rng.standard_normal(10).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["images"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "W", "b"], ["scores"], transB=1),
        ],
        "linear",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 1, 28, 28])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, 10])],
        initializer=[numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return weight, bias


@pytest.mark.parametrize("batch", ["batch", 1, 4])  # dynamic, fixed to 1, fixed to 4 (last chunk padded)
def test_onnx_linear_classifier_gives_numpys_scores(tmp_path, batch):
    pytest.importorskip("onnxruntime")
    path = tmp_path / "linear.onnx"
    weight, bias = linear_onnx(path, batch, np.random.default_rng(0))
    loaded = load_model(path)
    assert type(loaded) is Classifier and loaded.input_shape == (1, 28, 28)
    assert loaded.class_names == [str(k) for k in range(10)] and loaded.fingerprint == sha256(path)
    x = torch.rand(7, 1, 28, 28, dtype=torch.float64)
    expected = x.numpy().reshape(7, -1) @ weight.T.astype(np.float64) + bias
    # float32 (ONNX Runtime's Gemm over 784 inputs) vs float64 NumPy: ~1e-6 of scores ~16 expected, on any CPU.
    np.testing.assert_allclose(loaded(x).numpy(), expected, rtol=1e-4, atol=1e-4)


def test_a_small_cnn_exported_to_onnx_has_the_pytorch_modules_signature(tmp_path, digits_refset, small_config):
    pytest.importorskip("onnxruntime")
    original = make_cnn(seed=0)
    path = tmp_path / "cnn.onnx"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                original, (DIGITS,), str(path), dynamo=False, input_names=["images"], output_names=["scores"],
                dynamic_axes={"images": {0: "batch"}, "scores": {0: "batch"}},
            )
    except (ImportError, ModuleNotFoundError) as error:  # the exporter may want extra packages
        pytest.skip(f"torch.onnx.export is not available here: {error}")
    loaded = load_model(path)
    assert_same_scores(loaded, original)
    from_onnx = compute_signature(loaded, digits_refset, small_config, cache=False)
    from_torch = compute_signature(original, digits_refset, small_config, cache=False)
    assert zest_distance(from_onnx, from_torch) < 1e-6
    assert from_onnx.model_fingerprint == sha256(path) != from_torch.model_fingerprint
