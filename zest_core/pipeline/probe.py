"""The probe: everything model-independent, computed once per (reference set, config) and reused.

It holds the segments, the masks, the local-fit operators and the images and fills on the engine's
device, so that a signature for a new model costs only that model's forward passes plus one small
matrix product per image.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch

from .._shared.limits import check_mask_memory
from .._shared.npzfile import NpzRecord
from ..cache.store import SEGMENTS_FILE, SignatureCache
from ..errors import ZestError
from .config import ZestConfig
from .local_fit import fit_operator
from .perturbation import fill_images, image_masks
from .reference import ReferenceSet, check_refset
from .segmentation import quickshift_downscale, segment_reference_set

ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Probe:
    """Segments, masks and fit operators for one (reference set, config), on one device."""

    refset_fingerprint: str
    config: ZestConfig
    segments: np.ndarray  # int32 [N, H, W]
    masks: list[np.ndarray]  # uint8 [L, K_n] per image
    device: torch.device
    images: torch.Tensor  # [N, C, H, W] in [0, 1], config.dtype
    fills: torch.Tensor  # [N, C, H, W]
    segments_device: torch.Tensor  # long [N, H, W]
    masks_padded: torch.Tensor  # bool [N, L, K_max], each image's masks padded with False
    operators: list[torch.Tensor]  # float64 [K_n + 1, L]

    @property
    def num_images(self) -> int:
        return int(self.segments.shape[0])

    @property
    def num_segments(self) -> np.ndarray:
        return np.array([m.shape[1] for m in self.masks])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]


# This process's memory of probes, and of the segment maps they are built from (key ("segments", ...)).
_PROBES: "OrderedDict[tuple, Probe | np.ndarray]" = OrderedDict()
_MAX_PROBES = 6


def prepare_probe(
    refset: ReferenceSet,
    config: ZestConfig,
    device: torch.device,
    progress: ProgressFn | None = None,
    *,
    cache: SignatureCache | None = None,
) -> Probe:
    """Build (or fetch from memory) the probe for this reference set and config on ``device``.

    With a ``cache``, the segment maps are read from (or written to) it, so that another process
    does not segment the same reference set again.
    """
    check_refset(refset)
    key = _probe_key(refset.fingerprint(), config, device)
    if key in _PROBES:
        _PROBES.move_to_end(key)
        return _PROBES[key]
    segments = reference_segments(refset, config, progress, cache=cache)
    num_segments = segments.reshape(len(refset), -1).max(axis=1) + 1
    # Before any mask is drawn: N × L mask rows must fit the mask-memory limit.
    check_mask_memory(len(refset), config.num_samples, int(num_segments.max()), source="num_samples")
    masks = image_masks(num_segments, config.num_samples, config.seed, config.mask_design)
    operators = [
        fit_operator(m, config.mode, kernel_width=config.kernel_width, alpha=config.ridge_alpha) for m in masks
    ]
    dtype = getattr(torch, config.dtype)
    # Channels-last on purpose: measured about 25% faster CPU convolutions than contiguous NCHW,
    # and compose_samples keeps the layout of the images it gathers from.
    images = refset.as_tensor(device, dtype).contiguous(memory_format=torch.channels_last)
    segments_device = torch.from_numpy(segments).to(device=device, dtype=torch.long)
    probe = Probe(
        refset_fingerprint=refset.fingerprint(),
        config=config,
        segments=segments,
        masks=masks,
        device=device,
        images=images,
        fills=fill_images(images, segments_device, config.fill, config.fill_value).contiguous(
            memory_format=torch.channels_last
        ),
        segments_device=segments_device,
        masks_padded=_pad_masks(masks).to(device),
        operators=[torch.from_numpy(op).to(device) for op in operators],
    )
    _remember(key, probe)
    return probe


def adopt_probe(probe: Probe, config: ZestConfig, device: torch.device) -> None:
    """Make :func:`prepare_probe` (and so ``compute_signature``) in this process use ``probe``, built elsewhere.

    The probe is model-independent, so a worker handed it (through Ray's object store, say) need not
    segment and mask the reference set again; it is moved to ``device`` if it lives elsewhere.
    """
    key = _probe_key(probe.refset_fingerprint, config, device)
    if key in _PROBES:
        return
    if probe.device != device:
        probe = replace(
            probe, device=device, images=probe.images.to(device), fills=probe.fills.to(device),
            segments_device=probe.segments_device.to(device), masks_padded=probe.masks_padded.to(device),
            operators=[operator.to(device) for operator in probe.operators],
        )
    _remember(key, probe)


def _probe_key(refset_fingerprint: str, config: ZestConfig, device: torch.device) -> tuple[str, str, str]:
    # Execution fields (batch size, device) do not change a probe, but where it lives does.
    return (refset_fingerprint, config.fingerprint(science_only=True), str(device))


def _remember(key: tuple, probe: Probe | np.ndarray) -> None:
    _PROBES[key] = probe
    while len(_PROBES) > _MAX_PROBES:
        _PROBES.popitem(last=False)


def _pad_masks(masks: list[np.ndarray]) -> torch.Tensor:
    padded = np.zeros((len(masks), masks[0].shape[0], max(m.shape[1] for m in masks)), dtype=bool)
    for index, image_masks_ in enumerate(masks):
        padded[index, :, : image_masks_.shape[1]] = image_masks_
    return torch.from_numpy(padded)


def reference_segments(
    refset: ReferenceSet, config: ZestConfig, progress: ProgressFn | None = None, *, cache: SignatureCache | None = None
) -> np.ndarray:
    """The super-pixels of every reference image under ``config``'s segmentation, int32 (N, H, W).

    The one place a reference set is segmented: from this process's memory, else from ``cache``,
    else computed (and kept in both).
    """
    # Kept with the probes, in this process's memory (clearing it is starting afresh): the budget's plan
    # and the probe both need the segments, and quickshift takes about 0.1 s per 224-px image (shrunk).
    key = ("segments", SignatureCache.segments_key(
        refset.fingerprint(), config.segmentation, keyed_segmentation_params(config, refset.image_size), config.seed))
    if key in _PROBES:
        _PROBES.move_to_end(key)
        return _PROBES[key]
    segments = _segments(refset, config, progress, cache)
    _remember(key, segments)
    return segments


def _segments(
    refset: ReferenceSet, config: ZestConfig, progress: ProgressFn | None, cache: SignatureCache | None
) -> np.ndarray:
    key = None
    # What the key is made from, written into the file and checked when it is read back: a file
    # without it (written before issue 9) or with another's is segmented again and overwritten.
    params = keyed_segmentation_params(config, refset.image_size)
    identity = {
        "refset_fingerprint": refset.fingerprint(), "segmentation": config.segmentation,
        "segmentation_params": params, "seed": config.seed,
    }
    if cache is not None:
        key = SignatureCache.segments_key(refset.fingerprint(), config.segmentation, params, config.seed)
        cached = cache.load(key, SEGMENTS_FILE, _decode_segments, identity)
        if cached is not None and cached.shape == (len(refset),) + refset.image_size:
            return cached
    segments = segment_reference_set(
        refset, config.segmentation, config.segmentation_params, seed=config.seed, progress=progress
    )
    if key is not None:
        cache.store(key, SEGMENTS_FILE, NpzRecord(arrays={"segments": segments}, meta=identity))
    return segments


def keyed_segmentation_params(config: ZestConfig, image_size: tuple[int, int]) -> dict:
    """The segmentation parameters a cache key holds: the config's, with quickshift's shrink factor when it has one.

    Images from 224 px are segmented shrunk by default (:func:`~zest_core.pipeline.segmentation.quickshift_downscale`);
    the factor is folded in whenever it is above 1, so that a segmentation (or signature) made at another
    scale is never read back. Below that size the keys are what they were before the rule.
    """
    downscale = quickshift_downscale(config.segmentation, config.segmentation_params, image_size)
    return config.segmentation_params if downscale == 1 else {**config.segmentation_params, "downscale": downscale}


def config_key(config: ZestConfig, image_size: tuple[int, int]) -> str:
    """The config's part of a signature's cache key: its fingerprint, and quickshift's shrink factor above 1."""
    downscale = quickshift_downscale(config.segmentation, config.segmentation_params, image_size)
    return config.fingerprint() if downscale == 1 else f"{config.fingerprint()}|quickshift-downscale={downscale}"


def _decode_segments(record: NpzRecord) -> np.ndarray:
    segments = record.arrays.get("segments")
    if segments is None or segments.ndim != 3 or not np.issubdtype(segments.dtype, np.integer):
        got = "no such array" if segments is None else f"shape {segments.shape} of dtype {segments.dtype}"
        raise ZestError(f"segments: expected an integer array (N, H, W), got {got}")
    return segments
