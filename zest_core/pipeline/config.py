"""Configuration of a Zest run: every parameter that shapes a signature, validated in one place."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .._shared.checks import check_choice, check_int, check_number, check_type
from ..errors import ZestError
from .designs import MASK_DESIGNS

SEGMENTATION_METHODS = ("quickshift", "slic", "felzenszwalb")
FILLS = ("mean_color", "constant", "dataset_mean")
MODES = ("zest", "lime")
TARGETS = ("logits", "centered_logits", "probabilities", "log_probabilities")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "float64")

# Fields that change only how fast or where a signature is computed, never its value (up to
# floating-point rounding). Signatures that differ only in these can be compared.
EXECUTION_FIELDS = ("batch_size", "device", "amp")
# Fields added after signatures were first cached, with the value every earlier signature had. They are
# written and hashed only when they differ from it, so earlier signature files and cache keys stay valid.
LATER_FIELDS = {"mask_design": "bernoulli"}


@dataclass(frozen=True)
class ZestConfig:
    """Every parameter of a Zest signature.

    Parameters
    ----------
    num_samples : int
        L, the number of random super-pixel maskings per reference image (paper: 1000).
    segmentation : {"quickshift", "slic", "felzenszwalb"}
        Super-pixel algorithm (LIME uses quickshift).
    segmentation_params : dict
        Keyword arguments for the scikit-image segmentation function. Empty means: pick them from
        the image size (see :func:`zest_core.pipeline.segmentation.default_segmentation_params`).
    fill : {"mean_color", "constant", "dataset_mean"}
        What replaces a hidden super-pixel: its own mean colour (LIME's default), ``fill_value``,
        or the per-channel mean of the reference set (the authors' code: zero in normalised space).
    fill_value : float
        Pixel value in [0, 1] used by ``fill="constant"``.
    mode : {"zest", "lime"}
        ``"zest"``: least squares without intercept, as the authors' code does. ``"lime"``: the
        ``lime`` package's LimeBase (kernel-weighted Ridge, alpha=1, with intercept).
    targets : {"logits", "centered_logits", "probabilities", "log_probabilities"}
        What the local linear models regress (:func:`zest_core.pipeline.scores.to_targets`): the raw
        scores ("logits", the paper's setting), the logits centred over the classes, their softmax
        (the default, chosen by ``bench/bench_targets.py`` on the zoo's ``*-s0`` lineages and
        confirmed on ``*-s1``; see the README) or log-softmax.
    kernel_width : float
        Width of LIME's exponential kernel on the cosine distance to the unmasked image (lime mode).
    ridge_alpha : float
        Ridge penalty (lime mode; LIME uses 1).
    seed : int
        Seed of the mask sampler; the same seed gives bit-identical masks.
    batch_size : int or None
        Perturbed images per forward pass (batches span image boundaries). None picks it: on the
        CPU 256 (measured faster than 1000 for small CNNs on 2 cores), or as many images as hold
        about 4 M input values when that is fewer (27 at 224×224×3: as fast, and under half the
        memory, measured with resnet18), and on CUDA as many images as hold about 16 M input values
        (4096 at 32×32×3, 111 at 224×224×3), to amortise kernel launches.
    device : {"auto", "cpu", "cuda"}
        Where images are composed and models run; "auto" picks CUDA when it is available.
    dtype : {"float32", "float64"}
        Floating type of the images handed to the model.
    amp : bool
        Run the model under CUDA autocast (float16); ignored on CPU.
    mask_design : {"bernoulli", "antithetic", "orthogonal"}
        How the L masks of an image are drawn (:mod:`zest_core.pipeline.designs`): LIME's independent
        Bernoulli(1/2) masks (the paper's), complementary pairs, or random resolution-IV blocks of a
        Hadamard matrix.
    """

    num_samples: int = 1000
    segmentation: str = "quickshift"
    segmentation_params: dict = field(default_factory=dict)
    fill: str = "dataset_mean"
    fill_value: float = 0.0
    mode: str = "zest"
    targets: str = "probabilities"
    kernel_width: float = 0.25
    ridge_alpha: float = 1.0
    seed: int = 0
    batch_size: int | None = None
    device: str = "auto"
    dtype: str = "float32"
    amp: bool = False
    mask_design: str = "bernoulli"

    def __post_init__(self) -> None:
        # The values are checked, never converted: the fingerprint hashes them as given.
        check_int("num_samples", self.num_samples, minimum=2)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, minimum=1)
        check_int("seed", self.seed, minimum=0)
        check_choice("segmentation", self.segmentation, SEGMENTATION_METHODS)
        check_choice("fill", self.fill, FILLS)
        check_choice("mode", self.mode, MODES)
        check_choice("targets", self.targets, TARGETS)
        check_choice("device", self.device, DEVICES)
        check_choice("dtype", self.dtype, DTYPES)
        check_type("segmentation_params", self.segmentation_params, dict, "a dict")
        check_number("fill_value", self.fill_value, minimum=0.0, maximum=1.0)
        check_number("kernel_width", self.kernel_width, minimum=0.0, strict=True)
        check_number("ridge_alpha", self.ridge_alpha, minimum=0.0)
        check_type("amp", self.amp, bool, "a bool")
        check_choice("mask_design", self.mask_design, MASK_DESIGNS)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        for name, original in LATER_FIELDS.items():
            if values[name] == original:
                del values[name]
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ZestConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ZestError(f"config: expected ZestConfig fields only, got unknown field(s) {', '.join(unknown)}")
        return cls(**values)

    def replace(self, **changes: Any) -> "ZestConfig":
        return dataclasses.replace(self, **changes)

    def science_dict(self) -> dict[str, Any]:
        """The fields that determine a signature's value (all but the execution ones)."""
        return {k: v for k, v in self.to_dict().items() if k not in EXECUTION_FIELDS}

    def fingerprint(self, *, science_only: bool = False) -> str:
        values = self.science_dict() if science_only else self.to_dict()
        return _hash_json(values)


def _hash_json(values: dict[str, Any]) -> str:
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
