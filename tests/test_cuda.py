"""The CUDA path: same signatures as on the CPU, automatic device choice, opt-in AMP. Skipped without a GPU."""
import numpy as np
import pytest
import torch

from zest_core import ZestConfig, compute_signature, resolve_device, zest_distance

from conftest import make_cnn

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@needs_cuda
def test_auto_picks_cuda():
    assert resolve_device("auto").type == "cuda"


@needs_cuda
@pytest.mark.parametrize("mode", ["zest", "lime"])
def test_cuda_signature_equals_cpu_signature(digits_refset, mode):
    model = make_cnn(0)
    cpu = compute_signature(model, digits_refset, ZestConfig(num_samples=200, mode=mode, device="cpu"), cache=False)
    gpu = compute_signature(model, digits_refset, ZestConfig(num_samples=200, mode=mode, device="cuda"), cache=False)
    scale = np.abs(cpu.matrix()).max()
    # Device-dependent: cuDNN vs MKL/oneDNN kernels, batch 4096 vs 256, and cuDNN convolutions in TF32 by
    # default (torch.backends.cudnn.allow_tf32), hence 1e-4 of the scale rather than float32's 1e-5
    # (passed on an H100; not measurable on a CPU-only machine).
    np.testing.assert_allclose(gpu.matrix(), cpu.matrix(), rtol=1e-4, atol=1e-4 * scale)
    assert zest_distance(cpu, gpu) < 1e-6
    assert next(model.parameters()).device.type == "cpu"  # the caller's module is moved back


@needs_cuda
def test_amp_is_close_to_full_precision(digits_refset):
    model = make_cnn(1)
    full = compute_signature(model, digits_refset, ZestConfig(num_samples=200, device="cuda"), cache=False)
    amp = compute_signature(model, digits_refset, ZestConfig(num_samples=200, device="cuda", amp=True), cache=False)
    assert zest_distance(full, amp) < 1e-3


def test_asking_for_cuda_without_one_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda")
