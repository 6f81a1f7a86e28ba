"""safetensors files: named tensors and nothing else, read without pickle.

The format [1]_ is an 8-byte little-endian header length, a JSON header naming each tensor's
dtype, shape and byte range, then the raw bytes. Loading one runs no code, so it needs no
``trust_pickle``. The header is checked here before the ``safetensors`` package reads a byte of the
data, so that a malformed or hostile file gets an error naming it:

- a header length past the end of the file, or over the format's own 100 MB limit;
- a tensor whose declared shape needs more bytes than its byte range holds (a header claiming
  10^12 elements), or a range outside the file;
- a dtype this project does not handle (anything but float, integer and bool tensors).

References
----------
.. [1] Hugging Face, "safetensors: simple, safe way to store and distribute tensors",
   https://github.com/huggingface/safetensors (format description in its README).
"""
from __future__ import annotations

import json
import math

import torch

from ....errors import ModelLoadError
from ..files import first_line

SUFFIX = ".safetensors"
# Bytes per element of each dtype the project reads (the format's names).
DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
# The format's own bound on the JSON header.
MAX_HEADER_BYTES = 100_000_000


def is_safetensors(path: str, data: bytes) -> bool:
    """Whether ``data`` (the bytes of ``path``) is a safetensors file: by its suffix, or a header length then '{'."""
    if path.lower().endswith(SUFFIX):
        return True
    if len(data) < 10:
        return False
    length = int.from_bytes(data[:8], "little")
    return 2 <= length <= len(data) - 8 and data[8:9] == b"{"


def read_header(path: str, data: bytes) -> dict[str, dict]:
    """The tensor entries of a safetensors file's header, each checked against the file.

    Parameters
    ----------
    path : str
        The file, for error messages.
    data : bytes
        Its content.

    Returns
    -------
    dict of str to dict
        Tensor name to its ``{"dtype", "shape", "data_offsets"}``, in the header's order, without
        the ``__metadata__`` entry.

    Raises
    ------
    ModelLoadError
        Naming ``path`` and what is wrong: a truncated file, a header that is not a JSON object, an
        unknown dtype, a shape that is not a list of non-negative integers, a byte range outside
        the data, or a declared shape that needs more bytes than its range holds.
    """
    if len(data) < 8:
        raise ModelLoadError(f"{path}: not a safetensors file: {len(data)} bytes, shorter than its 8-byte header length")
    length = int.from_bytes(data[:8], "little")
    if length > min(MAX_HEADER_BYTES, len(data) - 8):
        raise ModelLoadError(
            f"{path}: not a readable safetensors file: its header claims {length:,} bytes, but "
            f"{'the format allows at most 100,000,000' if length > MAX_HEADER_BYTES else f'only {len(data) - 8:,} follow'}"
            " (a truncated or corrupt file?)"
        )
    try:
        header = json.loads(data[8:8 + length])
    except (UnicodeDecodeError, ValueError) as error:
        raise ModelLoadError(f"{path}: not a readable safetensors file: its header is not JSON ({first_line(error)})") from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{path}: not a readable safetensors file: its header is a {type(header).__name__}, not an object")
    available = len(data) - 8 - length
    entries = {name: entry for name, entry in header.items() if name != "__metadata__"}
    for name, entry in entries.items():
        _check_entry(path, name, entry, available)
    return entries


def _check_entry(path: str, name: str, entry: object, available: int) -> None:
    """One header entry: a known dtype, a shape of non-negative ints, and a byte range that fits both."""
    where = f"{path}: tensor {name!r}"
    if not isinstance(entry, dict):
        raise ModelLoadError(f"{where}: expected a header entry with dtype, shape and data_offsets, got {entry!r:.80}")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_SIZES:
        raise ModelLoadError(
            f"{where} has dtype {dtype!r}, which is not handled (expected one of {', '.join(DTYPE_SIZES)})"
        )
    if not (isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise ModelLoadError(f"{where}: expected a shape of non-negative integers, got {shape!r:.80}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
            and 0 <= offsets[0] <= offsets[1] <= available):
        raise ModelLoadError(
            f"{where}: its byte range {offsets!r:.80} lies outside the file's {available:,} data bytes "
            "(a truncated or corrupt file?)"
        )
    needed = math.prod(shape) * DTYPE_SIZES[dtype]
    if needed != offsets[1] - offsets[0]:
        raise ModelLoadError(
            f"{where} declares shape {tuple(shape)} of {dtype} ({math.prod(shape):,} elements, {needed:,} bytes), "
            f"but its byte range holds {offsets[1] - offsets[0]:,} bytes"
        )


def declared_architecture(path: str, data: bytes) -> str | None:
    """The ``"architecture"`` a safetensors file's ``__metadata__`` names (``resnet18``, ``timm:resnet18``), or None.

    A bare weights file says nothing of the network it fits; this project reads that one metadata key,
    which ``safetensors.torch.save_file(state, path, metadata={"architecture": "resnet18"})`` writes,
    so that such a file loads by its path alone (in a hub folder, say).
    """
    if len(data) < 10:
        return None
    length = int.from_bytes(data[:8], "little")
    if length > min(MAX_HEADER_BYTES, len(data) - 8):
        return None
    try:
        metadata = json.loads(data[8:8 + length]).get("__metadata__")
    except (UnicodeDecodeError, ValueError, AttributeError):
        return None
    architecture = metadata.get("architecture") if isinstance(metadata, dict) else None
    return architecture if isinstance(architecture, str) and architecture else None


def read_safetensors(path: str, data: bytes) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, by name, on the CPU, after :func:`read_header` checked it.

    Raises
    ------
    ModelLoadError
        For a file :func:`read_header` refuses, one with no tensors, one the ``safetensors``
        package cannot read, or when that package is not installed.
    """
    entries = read_header(path, data)
    if not entries:
        raise ModelLoadError(f"{path}: expected a safetensors file of weights, got one with no tensors")
    try:
        from safetensors.torch import load
    except ImportError:
        raise ModelLoadError(
            f"{path}: reading safetensors files needs the safetensors package (pip install safetensors)"
        ) from None
    try:
        return load(data)
    except Exception as error:  # noqa: BLE001 - the Rust reader raises its own error types
        raise ModelLoadError(f"{path}: not a readable safetensors file ({first_line(error)})") from error
