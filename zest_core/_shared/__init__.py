"""Helpers every layer may use: argument checks in one dialect, atomic writes, the checked npz format, progress.

- :mod:`.checks`: ``check_int``, ``check_number``, ``check_choice``, ``check_type``, raising
  :mod:`zest_core.errors` in the dialect ``"name: expected …, got …"``;
- :mod:`.atomic`: :func:`atomic_write_bytes`, a temporary file and ``os.replace``;
- :mod:`.npzfile`: :class:`NpzFormat`, the one checked ``.npz`` format (arrays, JSON metadata and
  a checksum), used by signatures, the cache and ModelDiff's pairs;
- :mod:`.progress`: :class:`ProgressBar`, a tqdm bar for the engine's progress callbacks.
"""
from .atomic import atomic_write_bytes
from .checks import check_choice, check_int, check_number, check_type
from .npzfile import NpzFormat, NpzRecord, array_checksum
from .progress import ProgressBar

__all__ = [
    "NpzFormat",
    "NpzRecord",
    "ProgressBar",
    "array_checksum",
    "atomic_write_bytes",
    "check_choice",
    "check_int",
    "check_number",
    "check_type",
]
