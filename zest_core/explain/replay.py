"""The perturbed samples a signature was fitted on, recomposed from its probe, and the models' answers.

References
----------
.. [1] Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023,
   Algorithm 1.
.. [2] Ribeiro, Singh & Guestrin, "Why Should I Trust You?", KDD 2016 (arXiv:1602.04938).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ..cache.store import SignatureCache
from ..errors import ZestError
from ..pipeline.perturbation import compose_samples
from ..pipeline.probe import Probe, prepare_probe
from ..pipeline.device import resolve_device
from ..pipeline.queries import run_model
from ..pipeline.scores import model_outputs, scores_to_probabilities
from ..pipeline.reference import ReferenceSet
from ..pipeline.signature import Signature
from .._shared.checks import check_index


@dataclass(frozen=True)
class PerturbedSamples:
    """Some of the perturbed images one signature was fitted on, with every model's predictions.

    Attributes
    ----------
    image_index : int
    mask_indices : ndarray of int, shape (S,)
        Which of the image's L masks each sample is (mask 0 keeps every super-pixel).
    masks : ndarray of uint8, shape (S, K)
        1 keeps a super-pixel, 0 replaces it by the fill.
    images : ndarray of uint8, shape (S, H, W) or (S, H, W, 3)
        The perturbed images in pixel space, exactly as the models received them (rounded to uint8).
    probabilities : dict of str to ndarray, shape (S, C)
        Each model's class probabilities (softmax of its logits, or its own probabilities).
    class_names : dict of str to list of str
    """

    image_index: int
    mask_indices: np.ndarray
    masks: np.ndarray
    images: np.ndarray
    probabilities: dict[str, np.ndarray]
    class_names: dict[str, list[str]]

    def predictions(self, model: str) -> list[tuple[str, float]]:
        """(predicted class name, its probability) of every sample, for one model."""
        probabilities = self.probabilities[model]
        names = self.class_names[model]
        best = probabilities.argmax(axis=1)
        return [(names[k], float(probabilities[i, k])) for i, k in enumerate(best)]


def perturbed_samples(
    refset: ReferenceSet,
    signature: Signature,
    image_index: int,
    models: Mapping[str, Callable[[torch.Tensor], Any]],
    mask_indices: Sequence[int],
    *,
    cache: SignatureCache | None = None,
) -> PerturbedSamples:
    """Recompose perturbed images of one reference image, as the signature's queries did, and run the models.

    The images come from the signature's own probe (:func:`zest_core.pipeline.probe.prepare_probe`:
    same segments, same masks, same fill), composed as the queries compose them, so sample
    ``mask_indices[i]`` is the image the models answered for mask ``mask_indices[i]`` of Algorithm 1
    ([1]_) when the signature was computed.

    Parameters
    ----------
    refset : ReferenceSet
        The reference set the signature was computed on.
    signature : Signature
        Supplies segments and config (num_samples, seed, fill, device).
    image_index : int
        Which reference image, 0 <= image_index < N.
    models : mapping of str to callable
        Named models (images [B, C, H, W] in [0, 1] -> scores [B, classes]), e.g. {"A": ..., "B": ...}.
    mask_indices : sequence of int
        Which of the image's masks to show, each in [0, L).
    cache : SignatureCache, optional
        Where the reference set's segment maps may be read from, instead of segmenting it again when
        no probe for it is in memory.

    Returns
    -------
    PerturbedSamples

    Raises
    ------
    ZestError
        If the reference set is not the signature's, its segmentation is not the signature's
        super-pixels, or an index is out of range.
    ModelInputError
        If a model fails on the samples.
    ModelOutputError
        If a model does not return finite scores [S, classes], or declares probabilities and
        returns something else.
    """
    if refset.fingerprint() != signature.refset_fingerprint:
        raise ZestError(
            "refset: expected the reference set the signature was computed on "
            f"({signature.refset_fingerprint[:12]}…), got {refset.fingerprint()[:12]}…"
        )
    config = signature.config
    check_index("image_index", image_index, len(refset))
    chosen = np.asarray(list(mask_indices), dtype=np.int64)
    if chosen.ndim != 1 or chosen.size == 0 or chosen.min() < 0 or chosen.max() >= config.num_samples:
        raise ZestError(
            f"mask_indices: expected one or more indices in [0, {config.num_samples - 1}], got {chosen.tolist()}"
        )
    probe = prepare_probe(refset, config, _query_device(config.device), cache=cache)
    if not np.array_equal(probe.segments, signature.segments):
        raise ZestError(
            "signature: expected the super-pixels this reference set segments into with the signature's "
            "config, got other segments (a signature computed with another segmentation library?)"
        )
    batch = _compose(probe, int(image_index), chosen)
    probabilities, names = {}, {}
    for name, model in models.items():
        # One batch through the one query loop, as the signature's queries ran (device, autocast).
        [scores] = run_model(model, [batch], probe.device, amp=config.amp, name=f"model {name}", what="samples")
        probabilities[name] = scores_to_probabilities(scores, model_outputs(model)).cpu().numpy()
        names[name] = _class_names(model, scores.shape[1])
    return PerturbedSamples(
        image_index=int(image_index), mask_indices=chosen, masks=probe.masks[image_index][chosen],
        images=_pixels(batch), probabilities=probabilities, class_names=names,
    )


def _query_device(name: str) -> torch.device:
    # The device the signature's queries ran on, so that the probe compute_signature built there is
    # found in memory; the CPU when that device is not on this machine (a signature made elsewhere).
    if name == "cuda" and not torch.cuda.is_available():
        return torch.device("cpu")
    return resolve_device(name)


def _compose(probe: Probe, image_index: int, chosen: np.ndarray) -> torch.Tensor:
    """Samples ``chosen`` of one image, composed by the gather the queries use."""
    masks = torch.as_tensor(chosen, device=probe.device)
    image = torch.full_like(masks, image_index)
    return compose_samples(probe.images, probe.fills, probe.segments_device, probe.masks_padded, image, masks)


def _pixels(batch: torch.Tensor) -> np.ndarray:
    """A batch [S, C, H, W] in [0, 1] as uint8 images [S, H, W] (one channel) or [S, H, W, C]."""
    pixels = (batch.clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    pixels = pixels[:, 0] if pixels.shape[1] == 1 else pixels.permute(0, 2, 3, 1)
    return np.ascontiguousarray(pixels.numpy())


def _class_names(model: Any, count: int) -> list[str]:
    """The model's declared class names when there are ``count`` of them, else "0", "1", …"""
    declared = getattr(model, "class_names", None)
    known = declared is not None and len(declared) == count
    return list(declared) if known else [str(k) for k in range(count)]

