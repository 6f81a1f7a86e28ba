"""The ``zest`` command, run in-process through ``main([...])`` on tiny configs (mnist:8, L=50).

The science checks are real: a model compared with the same weights in another file format is at
distance ~0, two random networks are far apart, a class-permuted copy is far apart until the
Hungarian alignment recovers the exact permutation, and the CLI's saved signature equals the
engine's own.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import tqdm

from zest_core import Signature, ZestConfig, compute_signature
from zest_core._shared import progress
from zest_core.cli import main
from zest_core.sources.mnist import load_mnist
from zest_core.zoo.demo import PermutedClasses
from zest_core.zoo.training import init_model

# Logit targets: these tests use untrained CNNs, whose softmax is nearly uniform whatever the weights.
TINY = ["--refset", "mnist:8", "--samples", "50", "--targets", "logits"]
PERMUTATION = [3, 0, 9, 1, 7, 2, 8, 4, 6, 5]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """Model files: two random SmallCNN state_dicts, A traced to TorchScript, A class-permuted, an RGB
    SmallCNN, a training checkpoint keeping its state_dict under a key load_model does not know, and junk bytes."""
    folder = tmp_path_factory.mktemp("models")
    model_a, model_b = init_model("small_cnn", seed=0), init_model("small_cnn", seed=1)
    names = ("a.pt", "b.pt", "a_script.pt", "a_permuted.pt", "rgb.pt", "checkpoint.pt", "junk.pt")
    paths = {name: str(folder / name) for name in names}
    torch.save(model_a.state_dict(), paths["a.pt"])
    torch.save({"weights": model_a.state_dict(), "epoch": 3}, paths["checkpoint.pt"])
    torch.save(model_b.state_dict(), paths["b.pt"])
    torch.save(init_model("small_cnn", seed=0, in_channels=3).state_dict(), paths["rgb.pt"])
    example = torch.rand(2, 1, 28, 28)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing and TorchScript deprecation warnings
        torch.jit.trace(model_a.eval(), example).save(paths["a_script.pt"])
        torch.jit.trace(PermutedClasses(model_a, PERMUTATION).eval(), example).save(paths["a_permuted.pt"])
    Path(paths["junk.pt"]).write_bytes(b"this is not a model")
    return paths


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``main(argv)``'s exit status, stdout and stderr."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def distance(capsys, a: str, b: str, *flags: str) -> float:
    code, out, err = run(capsys, "distance", a, b, *TINY, *flags)
    assert code == 0, err
    return float(out.strip())


# --- signature --------------------------------------------------------------------------------------


def test_signature_is_saved_reloadable_and_equals_the_engines(capsys, files, tmp_path):
    out = tmp_path / "a_sig.npz"
    code, stdout, err = run(capsys, "signature", f"small_cnn:{files['a.pt']}", *TINY, "-o", str(out))
    assert code == 0, err
    assert str(out) in stdout
    saved = Signature.load(out)
    assert (saved.num_images, saved.num_classes, saved.config.num_samples) == (8, 10, 50)

    # The same weights through the engine directly: the CLI must have loaded them, not a fresh init.
    model = init_model("small_cnn", seed=0).eval()
    expected = compute_signature(model, load_mnist(8), ZestConfig(num_samples=50, targets="logits"), cache=False)
    # Strict on purpose, and CPU-independent: the same config, so the same batches through the same kernels.
    np.testing.assert_allclose(saved.matrix(), expected.matrix(), rtol=1e-10, atol=1e-12)
    assert saved.refset_fingerprint == expected.refset_fingerprint


def test_config_flags_reach_the_signature(capsys, files, tmp_path):
    out = tmp_path / "lime.npz"
    code, _, err = run(
        capsys, "signature", files["a_script.pt"], *TINY, "--mode", "lime", "--targets", "probabilities",
        "--segmentation", "slic", "--fill", "mean_color", "--seed", "3", "--batch-size", "64", "--device", "cpu",
        "-o", str(out),
    )
    assert code == 0, err
    config = Signature.load(out).config
    assert (config.mode, config.targets, config.segmentation, config.fill, config.seed, config.batch_size) == (
        "lime", "probabilities", "slic", "mean_color", 3, 64,
    )
    assert Signature.load(out).intercepts is not None  # lime mode fits intercepts


# --- distance ---------------------------------------------------------------------------------------


def test_same_weights_in_two_formats_are_at_distance_zero_and_json_parses(capsys, files):
    code, out, err = run(capsys, "distance", f"small_cnn:{files['a.pt']}", files["a_script.pt"], *TINY, "--json")
    assert code == 0, err
    report = json.loads(out)
    # Eager vs TorchScript: the same aten kernels on the CPU (bit-identical); even where a device's JIT
    # fuses ops, the cosine distance is quadratic in the difference (1e-13 for float32 kernel changes).
    assert report["distance"] == pytest.approx(0.0, abs=1e-9)
    assert (report["metric"], report["align"], report["alignment_method"]) == ("cosine", "auto", None)
    assert "pairs" not in report
    first, second = report["models"]
    assert first["input"] == f"small_cnn:{files['a.pt']}" and second["input"] == files["a_script.pt"]
    assert first["num_classes"] == second["num_classes"] == 10
    # Different files, so both signatures were computed (no cache hit could make the zero trivial).
    assert first["fingerprint"] != second["fingerprint"]


def test_different_random_models_are_far_apart(capsys, files):
    d_ab = distance(capsys, f"small_cnn:{files['a.pt']}", f"small_cnn:{files['b.pt']}")
    assert d_ab > 0.1
    # Symmetric, and every metric gives a positive distance.
    assert distance(capsys, f"small_cnn:{files['b.pt']}", f"small_cnn:{files['a.pt']}") == pytest.approx(d_ab)
    for metric in ("l1", "l2", "linf"):
        assert distance(capsys, f"small_cnn:{files['a.pt']}", f"small_cnn:{files['b.pt']}", "--metric", metric) > 0


def test_hungarian_alignment_recovers_a_class_permutation(capsys, files):
    a, permuted = f"small_cnn:{files['a.pt']}", files["a_permuted.pt"]
    assert distance(capsys, a, permuted, "--align", "none") > 0.1
    code, out, err = run(capsys, "distance", a, permuted, *TINY, "--align", "hungarian", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["distance"] == pytest.approx(0.0, abs=1e-9)
    assert report["alignment_method"] == "hungarian"
    # A_permuted's class k is A's class PERMUTATION[k]: A's class a pairs with the k holding it.
    expected = [[a_class, PERMUTATION.index(a_class)] for a_class in range(10)]
    assert report["pairs"] == expected


def test_signature_files_are_accepted_as_distance_inputs(capsys, files, tmp_path):
    sig_a, sig_b = tmp_path / "a.npz", tmp_path / "b.npz"
    for spec, out in ((f"small_cnn:{files['a.pt']}", sig_a), (f"small_cnn:{files['b.pt']}", sig_b)):
        assert run(capsys, "signature", spec, *TINY, "-o", str(out))[0] == 0
    from_models = distance(capsys, f"small_cnn:{files['a.pt']}", f"small_cnn:{files['b.pt']}")

    code, out, err = run(capsys, "distance", str(sig_a), str(sig_b))  # no --refset needed
    assert code == 0, err
    assert float(out) == pytest.approx(from_models, rel=1e-9)
    # A file and a model: unset config flags follow the file's config (L=50), so they are comparable.
    code, out, err = run(capsys, "distance", str(sig_a), f"small_cnn:{files['b.pt']}", "--refset", "mnist:8")
    assert code == 0, err
    assert float(out) == pytest.approx(from_models, rel=1e-9)


def test_incompatible_inputs_are_refused_naming_both(capsys, files, tmp_path):
    sig_a = tmp_path / "a.npz"
    assert run(capsys, "signature", files["a_script.pt"], *TINY, "-o", str(sig_a))[0] == 0
    code, _, err = run(capsys, "distance", str(sig_a), files["a_script.pt"], "--refset", "mnist:8", "--samples", "60")
    assert code == 2
    assert str(sig_a) in err and "num_samples=50 vs 60" in err
    code, _, err = run(capsys, "distance", str(sig_a), files["a_script.pt"], "--refset", "mnist:9")
    assert code == 2 and str(sig_a) in err and "another reference set" in err


# --- matrix -----------------------------------------------------------------------------------------


def read_csv_matrix(text: str) -> tuple[list[str], np.ndarray]:
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    assert header[0] == "model" and [row[0] for row in body] == header[1:]
    return header[1:], np.array([[float(v) for v in row[1:]] for row in body])


def test_matrix_csv_is_symmetric_with_zero_diagonal_and_matches_distance(capsys, files, tmp_path):
    specs = [f"small_cnn:{files['a.pt']}", f"small_cnn:{files['b.pt']}", files["a_script.pt"]]
    out = tmp_path / "matrix.csv"
    code, stdout, err = run(capsys, "matrix", *specs, *TINY, "-o", str(out))
    assert code == 0, err
    assert stdout == ""
    names, matrix = read_csv_matrix(out.read_text())
    assert names == specs
    np.testing.assert_allclose(matrix, matrix.T)
    np.testing.assert_array_equal(np.diag(matrix), 0.0)
    assert matrix[0, 1] == pytest.approx(distance(capsys, specs[0], specs[1]), rel=1e-8)
    assert matrix[0, 2] == pytest.approx(0.0, abs=1e-9)  # the same weights, as TorchScript
    # d(B, A as TorchScript) vs d(A, B): linear, not quadratic, in any eager/TorchScript difference, which is
    # float32 rounding (4e-7 of the signature's scale with other kernels) where a JIT fuses ops: rel=1e-5.
    assert matrix[1, 2] == pytest.approx(matrix[0, 1], rel=1e-5)


def test_matrix_json_to_stdout_with_a_signature_file(capsys, files, tmp_path):
    sig_b = tmp_path / "b.npz"
    assert run(capsys, "signature", f"small_cnn:{files['b.pt']}", *TINY, "-o", str(sig_b))[0] == 0
    specs = [f"small_cnn:{files['a.pt']}", str(sig_b), files["a_permuted.pt"]]
    code, out, err = run(capsys, "matrix", *specs, *TINY, "--format", "json", "--align", "hungarian")
    assert code == 0, err
    report = json.loads(out)
    assert report["models"] == specs and report["align"] == "hungarian"
    matrix = np.array(report["matrix"])
    np.testing.assert_allclose(matrix, matrix.T)
    assert matrix[0, 2] == pytest.approx(0.0, abs=1e-9)  # aligned, A_permuted is A
    assert matrix[0, 1] > 0.1


# --- caching and progress ---------------------------------------------------------------------------


def test_cache_dir_and_no_cache(capsys, files, tmp_path, isolated_cache):
    spec = f"small_cnn:{files['a.pt']}"
    assert run(capsys, "signature", spec, *TINY, "--no-cache", "-o", str(tmp_path / "x.npz"))[0] == 0
    assert not isolated_cache.exists() or not list(isolated_cache.iterdir())
    chosen = tmp_path / "chosen-cache"
    assert run(capsys, "signature", spec, *TINY, "--cache-dir", str(chosen), "-o", str(tmp_path / "y.npz"))[0] == 0
    assert len(list(chosen.glob("*.zsig.npz"))) == 1
    assert run(capsys, "signature", spec, *TINY, "-o", str(tmp_path / "z.npz"))[0] == 0
    assert len(list(isolated_cache.glob("*.zsig.npz"))) == 1  # $ZEST_CACHE_DIR by default


def test_progress_bar_goes_to_stderr(capsys, files, tmp_path, monkeypatch):
    # tqdm reads TQDM_DISABLE (set by conftest) when it is imported, so re-enable it explicitly here.
    monkeypatch.setattr(progress, "tqdm", functools.partial(tqdm.tqdm, disable=False))
    code, out, err = run(capsys, "signature", files["a_script.pt"], *TINY, "--no-cache", "-o", str(tmp_path / "s.npz"))
    assert code == 0
    assert "query" in err and "query" not in out


# --- bad input: exit status 2, a message naming the file, never a traceback ------------------------


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["distance", "{junk.pt}", "{a_script.pt}", *TINY], ["{junk.pt}", "not a TorchScript model"]),
        (["distance", "{a.pt}", "{a_script.pt}", *TINY], ["{a.pt}", "ARCH:"]),  # a state_dict without ARCH:
        (["distance", "missing.pt", "{a_script.pt}", *TINY], ["missing.pt", "no such file"]),
        (["distance", "resnet99:{a.pt}", "{a_script.pt}", *TINY], ["resnet99", "unknown architecture"]),
        (["distance", "resnet20:{a.pt}", "{a_script.pt}", *TINY], ["{a.pt}", "do not fit architecture 'resnet20'"]),
        (["distance", "small_cnn:missing.pt", "{a_script.pt}", *TINY], ["missing.pt", "no such file"]),
        (["distance", "small_cnn:{junk.pt}", "{a_script.pt}", *TINY], ["{junk.pt}", "not a readable state_dict"]),
        (["distance", "small_cnn:{a_script.pt}", "{a.pt}", *TINY], ["{a_script.pt}", "not a readable state_dict"]),
        (["distance", "small_cnn:{checkpoint.pt}", "{a_script.pt}", *TINY], ["{checkpoint.pt}", "entry 'weights'"]),
        (["distance", "small_cnn:{rgb.pt}", "{a_script.pt}", *TINY], ["{rgb.pt}", "3-channel", "1-channel"]),
        (["distance", "missing.npz", "{a_script.pt}", *TINY], ["missing.npz", "no such file"]),
        (["distance", "{a_script.pt}", "{a_script.pt}", "--refset", "nope.npz"], ["nope.npz", "no such reference"]),
        (["distance", "{a_script.pt}", "{a_script.pt}", "--refset", "mnist:abc"], ["mnist:abc", "positive integer"]),
        (["distance", "{a_script.pt}", "{a_script.pt}"], ["--refset is required"]),
        (["signature", "{a_script.pt}", *TINY, "-o", "out.txt"], ["out.txt", ".npz"]),
        (["signature", "sig.npz", *TINY, "-o", "out.npz"], ["sig.npz", "signature file"]),
        (["matrix", "{a_script.pt}", *TINY], ["at least 2 models"]),
        (["distance", "{a_script.pt}", "{a_script.pt}", *TINY, "--samples", "1"], ["--samples: expected an integer ≥ 2"]),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(capsys, files, argv, expected):
    fill = {f"{{{name}}}": path for name, path in files.items()}
    argv = [_substitute(arg, fill) for arg in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("zest: error: ") and "Traceback" not in err
    for text in expected:
        assert _substitute(text, fill) in err


@pytest.mark.parametrize(
    "argv, flag, field",
    [
        (["distance", "{a_script.pt}", "{a_script.pt}", *TINY, "--samples", "1"], "--samples: expected an integer ≥ 2",
         "num_samples"),
        (["signature", "{a_script.pt}", *TINY, "--samples", "1", "-o", "x.npz"], "--samples: expected", "num_samples"),
        (["matrix", "{a_script.pt}", "{a_script.pt}", *TINY, "--samples", "0"], "--samples: expected", "num_samples"),
        (["distance", "{a_script.pt}", "{a_script.pt}", *TINY, "--batch-size", "0"], "--batch-size: expected",
         "batch_size"),
        (["distance", "{a_script.pt}", "{a_script.pt}", *TINY, "--seed", "-1"], "--seed: expected", "seed:"),
        (["distance", "http://127.0.0.1:9/", "{a_script.pt}", *TINY, "--timeout", "0"], "--timeout: expected a number > 0",
         "timeout:"),
        (["distance", "http://127.0.0.1:9/", "{a_script.pt}", *TINY, "--retries", "-1"], "--retries: expected an integer ≥ 0",
         "retries:"),
        (["distance", "{a_script.pt}", "{a_script.pt}", "--refset", "{folder}", "--image-size", "0", "5"],
         "--image-size: expected", "size:"),
        (["demo", "--n", "0", "--no-cache"], "--n: expected 1 <= n", " n:"),
        (["demo", "--samples", "1", "--no-cache"], "--samples: expected", "num_samples"),
        (["zoo", "build", "--tiny", "--seed", "-1", "--out", "{folder}/zoo"], "--seed: expected an integer ≥ 0", "seed:"),
        (["bench", "reuse", "--ref-seed", "-1", "--zoo", "{folder}"], "--ref-seed: expected an integer ≥ 0", "non-negative"),
    ],
)
def test_errors_name_the_flag_the_user_typed(capsys, files, tmp_path, argv, flag, field):
    """Issue 9, item 10: a bad flag value is reported against the flag (--samples), not a field (num_samples)."""
    fill = {**{f"{{{name}}}": path for name, path in files.items()}, "{folder}": str(tmp_path)}
    code, out, err = run(capsys, *[_substitute(arg, fill) for arg in argv])
    assert code == 2, err
    assert err.startswith("zest: error: ") and "Traceback" not in err
    assert flag in err
    assert field not in err.replace(flag, "")
    assert not (tmp_path / "zoo").exists()


def test_timeout_and_retries_flags_reach_an_endpoint_model(capsys, files, monkeypatch):
    """Issue 9, item 7: ``--timeout`` bounds each request to an http(s):// model and ``--retries`` is passed on."""
    import threading
    import time

    from zest_core.sources.endpoint import model_responder, serve_model, serve_responder

    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    served, url = serve_model(init_model("small_cnn", seed=0).eval(), input_shape=(1, 28, 28))
    with served:
        assert distance(capsys, url, files["a_script.pt"], "--timeout", "10", "--retries", "0") == pytest.approx(
            0.0, abs=1e-6)

    release = threading.Event()
    answer = model_responder(init_model("small_cnn", seed=0).eval())

    def slow(method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if method == "POST":
            release.wait(timeout=10)
        return answer(method, path, body)

    server, url = serve_responder(slow)
    try:
        started = time.monotonic()
        code, _, err = run(capsys, "distance", url, files["a_script.pt"], *TINY, "--timeout", "0.5", "--retries", "0")
        elapsed = time.monotonic() - started
    finally:
        release.set()
        server.shutdown()
    assert code == 2 and "Traceback" not in err
    assert "after 1 attempt (retries=0)" in err and "timed out after 0.5 s" in err
    assert "Does the model take" not in err
    assert elapsed < 5


def test_corrupt_signature_file_exits_2(capsys, files, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    code, _, err = run(capsys, "distance", str(bad), files["a_script.pt"], *TINY)
    assert code == 2 and str(bad) in err and "not a readable signature file" in err


def test_argparse_errors_and_help_return_codes(capsys):
    assert run(capsys, "distance", "a", "b", "--metric", "nope")[0] == 2
    assert run(capsys, "--help")[0] == 0
    assert run(capsys)[0] == 2  # a subcommand is required


def test_python_dash_m_entry_point_reports_errors_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "zest_core.cli", "distance", str(tmp_path / "missing.pt"), "x.pt", "--refset", "mnist"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "zest: error:" in result.stderr and "missing.pt" in result.stderr and "Traceback" not in result.stderr


def _substitute(text: str, fill: dict[str, str]) -> str:
    for key, value in fill.items():
        text = text.replace(key, value)
    return text


def test_pickled_models_need_trust_pickle_and_onnx_files_are_models(capsys, files, tmp_path):
    whole = tmp_path / "whole.pt"
    torch.save(init_model("small_cnn", seed=0), whole)
    code, _, err = run(capsys, "distance", str(whole), f"small_cnn:{files['a.pt']}", *TINY)
    assert code == 2 and str(whole) in err and "--trust-pickle" in err and "arbitrary code" in err
    assert distance(capsys, str(whole), f"small_cnn:{files['a.pt']}", "--trust-pickle") == pytest.approx(0.0, abs=1e-9)

    exported = tmp_path / "a.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            init_model("small_cnn", seed=0).eval(), (torch.rand(2, 1, 28, 28),), str(exported), dynamo=False,
            dynamic_axes={"input": {0: "batch"}}, input_names=["input"],
        )
    # ONNX Runtime vs torch: other float32 kernels, but the cosine distance is quadratic in them (~1e-13).
    assert distance(capsys, str(exported), f"small_cnn:{files['a.pt']}") == pytest.approx(0.0, abs=1e-6)


# --- demo -------------------------------------------------------------------------------------------


def test_demo_runs_and_recovers_the_permutation(capsys):
    code, out, err = run(capsys, "demo", "--epochs", "1", "--n", "10", "--samples", "60", "--no-cache")
    assert code == 0, err
    assert "permutation recovered exactly: yes (10/10" in out
    relative = {
        line.split("d =")[0].strip(): float(line.split("relative")[1].split()[0])
        for line in out.splitlines() if "relative" in line and "d =" in line and "–" in line
    }
    # Fine-tuning with a low learning rate stays far closer to A than unrelated models are.
    assert relative["A – A_finetuned"] < 0.5
    assert relative["A – B"] > 0.5 and relative["B – C"] > 0.5
