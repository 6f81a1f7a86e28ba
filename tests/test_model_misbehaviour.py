"""Issue 9, items 6, 8 and 9: what a model under test does wrong gets one clear error, before it costs a result.

Item 6: an exception raised inside the model (a TorchScript file's ``torch.jit.Error``, a
ZeroDivisionError in batch 3) escaped as a traceback with exit status 1. Item 8: a model with noise
in its outputs gave d(model, itself) = 1.03 without a word. Item 9: ``--samples 2`` printed a
distance from fits with about 20 unknowns per image.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from zest_core import (
    Classifier,
    ModelInputError,
    ModelOutputError,
    ModelRuntimeError,
    SignatureCache,
    ZestConfig,
    ZestError,
    compute_signature,
    zest_distance,
)
from zest_core.cache import SIGNATURE_FILE
from zest_core.cli import main
from zest_core.pipeline.queries import error_summary, query_scores
from zest_core.pipeline.scores import check_repeatable_scores

from conftest import make_cnn

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


class FailsOnCall(torch.nn.Module):
    """Ten logits, until the ``fail_on``-th call, which raises ZeroDivisionError (as model code dividing by zero)."""

    def __init__(self, fail_on: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(28 * 28, 10)
        self.fail_on, self.calls = fail_on, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.fail_on:
            return 1 / 0
        return self.linear(x.flatten(1))


class ScriptedFailure(torch.nn.Module):
    """A TorchScript model that raises on its first call (no trust flag needed to load it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > 0:
            raise RuntimeError("the scripted model is broken")
        return x.flatten(1)[:, :10]


class ScriptedNoise(torch.nn.Module):
    """A TorchScript model that adds fresh noise to its logits on every call: eval() does not fix it."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(28 * 28, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.linear(x.flatten(1))
        return logits + 0.5 * torch.randn(logits.shape)


def save_script(module: torch.nn.Module, path: Path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation warning
        torch.jit.script(module).save(str(path))
    return str(path)


# --- item 6: the model's own exceptions -------------------------------------------------------------

def test_an_exception_in_batch_3_names_the_model_and_the_batch_with_its_cause(digits_refset, small_config):
    model = Classifier(FailsOnCall(fail_on=3), source="unit test model")
    with pytest.raises(ModelRuntimeError, match=r"^the model \(unit test model\) failed on batch 3 of the perturbed "
                                                r"images, of shape \(50, 1, 28, 28\): ZeroDivisionError: division by zero$") as caught:
        # Without the repeated first batch, the third call is the third batch.
        compute_signature(model, digits_refset, small_config, cache=False, allow_nondeterministic=True)
    assert isinstance(caught.value.__cause__, ZeroDivisionError)
    assert "Does the model take" not in str(caught.value)

    with pytest.raises(ModelRuntimeError, match=r"^the model \(FailsOnCall\) failed on batch 3 of the images") as caught:
        query_scores(FailsOnCall(fail_on=3), torch.rand(10, 1, 28, 28), batch_size=4, device="cpu")
    with pytest.raises(ModelRuntimeError, match=r"^the model \(broken\) failed on batch 1 of the images.*KeyError"):
        def broken(x):
            return {}["scores"]
        query_scores(broken, torch.rand(4, 1, 28, 28), device="cpu")


def test_a_shape_failure_on_the_first_batch_keeps_its_hint_and_other_failures_do_not_get_it():
    images = torch.rand(4, 1, 8, 8)
    with pytest.raises(ModelInputError, match=r"first batch.*mat1 and mat2 shapes.*Does the model take 1-channel 8×8"):
        query_scores(torch.nn.Linear(100, 3), images, device="cpu")
    for failure in (ValueError("the service is down"), ZeroDivisionError("division by zero"), KeyError("logits")):
        def model(x, failure=failure):
            raise failure
        with pytest.raises(ModelRuntimeError, match="failed on batch 1") as caught:
            query_scores(model, images, device="cpu")
        assert "Does the model take" not in str(caught.value) and caught.value.__cause__ is failure


def test_a_torchscript_error_is_summarised_in_one_line(tmp_path):
    path = save_script(ScriptedFailure(), tmp_path / "broken.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation warning
        scripted = torch.jit.load(path)
    with pytest.raises(torch.jit.Error) as caught:
        scripted(torch.zeros(1, 1, 28, 28))
    assert not isinstance(caught.value, RuntimeError)  # why the CLI once let it through as a traceback
    assert len(str(caught.value).splitlines()) > 3  # the TorchScript traceback comes first
    assert error_summary(caught.value) == "builtins.RuntimeError: the scripted model is broken"


def test_cli_reports_a_torchscript_models_error_in_one_line_with_exit_status_2(tmp_path, capsys):
    path = save_script(ScriptedFailure(), tmp_path / "broken.pt")
    code, out, err = run(capsys, "distance", path, path, "--refset", "mnist:8", "--samples", "50", "--no-cache")
    assert code == 2, err  # before the fix: status 1 and a raw traceback
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zest: error: ")
    assert "TorchScript" in lines[0] and "failed on batch 1" in lines[0] and "the scripted model is broken" in lines[0]
    assert "Traceback" not in err and "Does the model take" not in err and out == ""


def test_the_dashboard_shows_a_models_exception_as_its_error_message(digits_refset, small_config):
    """The dashboard's error boundary catches ZestError (and ValueError): the model's exception now is one."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from dashboard.services import JobError, signatures_with_progress
    from dashboard.ui import INPUT_ERRORS

    model = Classifier(FailsOnCall(fail_on=3), source="zoo cnn-s0")  # past the first batch: once a raw exception
    with pytest.raises(JobError, match=r"^Model A: the model \(zoo cnn-s0\) failed on batch \d+ of the perturbed "
                                       r"images.*ZeroDivisionError") as caught:
        signatures_with_progress([("Model A", model)], digits_refset, small_config)
    assert isinstance(caught.value, INPUT_ERRORS)  # what error_boundary shows with st.error
    assert isinstance(caught.value.__cause__.__cause__, ZeroDivisionError)


# --- item 8: a model must answer the same images the same way ---------------------------------------

class NoisyOutputs(torch.nn.Module):
    """A model adding noise to its logits (eval() does not stop it)."""

    def __init__(self, model: torch.nn.Module, scale: float) -> None:
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        return logits + self.scale * logits.abs().max() * torch.randn(logits.shape, dtype=logits.dtype)


def test_a_model_with_noise_in_its_outputs_is_refused(digits_refset, small_config):
    noisy = NoisyOutputs(make_cnn(0), scale=0.05)
    with pytest.raises(ModelOutputError, match=r"the model \(NoisyOutputs\) is not deterministic.*--allow-nondeterministic"):
        compute_signature(noisy, digits_refset, small_config, cache=False)
    # Allowed deliberately, it is computed, and shows what the check protects against.
    first = compute_signature(noisy, digits_refset, small_config, cache=False, allow_nondeterministic=True)
    second = compute_signature(noisy, digits_refset, small_config, cache=False, allow_nondeterministic=True)
    assert zest_distance(first, second) > 0.01  # a deterministic model's is exactly 0


def test_dropout_left_on_behind_a_callable_is_refused(digits_refset, small_config):
    """An API that runs its network in training mode: prepared_model cannot put a callable in eval()."""
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                                  torch.nn.Linear(64, 10)).train()
    with pytest.raises(ModelOutputError, match="not deterministic"):
        compute_signature(lambda x: network(x), digits_refset, small_config)


def test_the_second_query_changes_nothing_of_a_deterministic_models_signature(digits_refset, small_config):
    model = make_cnn(0)
    stages: list[tuple[int, int, str]] = []
    checked = compute_signature(model, digits_refset, small_config, cache=False,
                                progress=lambda d, t, s: stages.append((d, t, s)))
    unchecked = compute_signature(model, digits_refset, small_config, cache=False, allow_nondeterministic=True)
    np.testing.assert_array_equal(checked.matrix(), unchecked.matrix())
    queries = [(d, t) for d, t, s in stages if s == "query"]
    total = len(digits_refset) * small_config.num_samples
    assert queries[-1] == (total, total) and [d for d, _ in queries] == sorted({d for d, _ in queries})


def test_float_rounding_is_tolerated_and_real_differences_are_not():
    scores = torch.randn(50, 10, dtype=torch.float32) * 8
    check_repeatable_scores(scores, scores.clone())
    # float32 rounding of a differently ordered reduction: a few ulps of the largest score.
    check_repeatable_scores(scores, scores + 4 * torch.finfo(torch.float32).eps * scores.abs().max())
    check_repeatable_scores(scores.half(), (scores * (1 + 2e-3)).half())  # float16 (autocast) gets ~1e-2
    with pytest.raises(ModelOutputError, match="not deterministic"):
        check_repeatable_scores(scores, scores + 1e-3 * scores.abs().max())
    with pytest.raises(ModelOutputError, match="not deterministic"):
        check_repeatable_scores(scores.double(), scores.double() * (1 + 1e-3))


def test_cli_refuses_a_noisy_model_unless_allowed(tmp_path, capsys):
    path = save_script(ScriptedNoise(), tmp_path / "noisy.pt")
    argv = ["distance", path, path, "--refset", "mnist:8", "--samples", "50", "--no-cache"]
    code, out, err = run(capsys, *argv)
    assert code == 2 and "not deterministic" in err and "--allow-nondeterministic" in err and out == ""
    code, out, err = run(capsys, *argv, "--allow-nondeterministic")
    assert code == 0, err
    assert float(out) > 0.05  # d(model, itself): what the default refuses to print


# --- item 9: enough samples for every image's unknowns ------------------------------------------

def never_called(x):
    raise AssertionError("the model was queried although the fit is underdetermined")


def test_too_few_samples_for_an_images_super_pixels_are_refused_before_any_query(digits_refset):
    # digits_refset's quickshift super-pixels: K = 21, 14, 28, 25, 20, 24; image 2 needs L ≥ 29.
    for mode in ("zest", "lime"):
        config = ZestConfig(num_samples=20, device="cpu", mode=mode)
        with pytest.raises(ZestError, match=r"^num_samples: expected at least K \+ 1 = 29 maskings per image, since "
                                            r"image 2 of the reference set has K = 28 super-pixels \(5 of the 6 images "
                                            r"are short\).*got 20$"):
            compute_signature(never_called, digits_refset, config, cache=False)
    with pytest.raises(ZestError, match=r"K = 28 super-pixels and a local fit.*got 28$"):
        compute_signature(never_called, digits_refset, ZestConfig(num_samples=28, device="cpu"), cache=False)
    signature = compute_signature(make_cnn(0), digits_refset, ZestConfig(num_samples=29, device="cpu"), cache=False)
    assert max(w.shape[1] for w in signature.weights) == 28


def test_an_underdetermined_signature_from_the_cache_is_refused_too(digits_refset, isolated_cache):
    model = make_cnn(0)
    good = compute_signature(model, digits_refset, ZestConfig(num_samples=40, device="cpu"), cache=False)
    short = ZestConfig(num_samples=20, device="cpu")
    good.config = short  # as a version without the check would have cached it
    store = SignatureCache(isolated_cache)
    store.store(SignatureCache.key(good.model_fingerprint, digits_refset.fingerprint(), short.fingerprint()),
                SIGNATURE_FILE, good.to_record())
    with pytest.raises(ZestError, match="image 2 of the reference set has K = 28"):
        compute_signature(model, digits_refset, short)


def test_cli_names_samples_for_an_underdetermined_fit(tmp_path, capsys):
    path = tmp_path / "a.pt"
    torch.save(make_cnn(0).state_dict(), path)
    code, out, err = run(capsys, "distance", f"small_cnn:{path}", f"small_cnn:{path}", "--refset", "mnist:8",
                         "--samples", "2", "--no-cache")
    assert code == 2 and out == ""  # before the fix: 0, and a distance
    assert "--samples: expected at least K + 1 = 24" in err and "image 2 of the reference set has K = 23" in err
    assert "num_samples" not in err
