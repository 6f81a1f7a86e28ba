"""All-pairs Zest cosine distances of a hub, block by block, streamed to a file.

For M models the distance phase compares M(M − 1)/2 pairs; once the signatures exist it is a few
matrix products. Each model's C × ΣK signature is flattened and divided by its norm, so that, for
two models with the same class count, ``1 − ⟨a, b⟩`` of the unit vectors is their cosine distance
(:func:`zest_core.pipeline.distance.zest_distance` with ``align="auto"``), and a block of b × b
pairs is one (b × CΣK) @ (CΣK × b) product. Only pairs that need their classes matched (class
counts that differ, or ``align`` "greedy"/"hungarian") take the alignment path: one product of
their class rows gives every pair's C_A × C_B class-cosine matrix, the classes are matched as
:func:`zest_core.pipeline.alignment.match_classes` does (the greedy matching vectorised over the
pairs of the block), and the distance of the matched rows follows from the same product.

Memory is bounded by the block size, not by M: two blocks of signatures and one block of distances
are held at a time, and with ``out`` the M × M matrix goes to a ``.npy`` file, block by block,
never into memory (M = 10,000 is 800 MB of float64 on disk).

References
----------
Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023 (the
cosine distance of signatures, and the greedy class matching of their code).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .._shared.checks import check_int
from ..errors import ZestError
from ..pipeline.alignment import batched_matching
from ..pipeline.distance import alignment_method, cosine_from_products
from .stack import SignatureStack

DEFAULT_BLOCK_SIZE = 256
# The most class rows on either side of one alignment product: its Gram and cost arrays stay
# within 2048² float64 values (32 MB) each, whatever the block size.
ALIGN_ROWS = 2048
ProgressFn = Callable[[int, int, str], None]


@dataclass
class _Block:
    """Some models of a stack, read once: per class count, their unit-normalised matrices (n, C, ΣK)."""

    positions: dict[int, np.ndarray] = field(default_factory=dict)  # class count → positions in the block
    units: dict[int, np.ndarray] = field(default_factory=dict)  # class count → (n, C, ΣK)
    size: int = 0

    @classmethod
    def read(cls, stack: SignatureStack, indices: Sequence[int]) -> "_Block":
        indices = np.asarray(indices, dtype=np.int64)
        counts = stack.num_classes[indices]
        block = cls(size=len(indices))
        for count in np.unique(counts):
            where = np.flatnonzero(counts == count)
            units = np.stack(stack.gather(indices[where].tolist())).astype(np.float64, copy=False)
            norms = np.sqrt(np.einsum("ncw,ncw->n", units, units))
            if np.any(norms == 0):
                name = stack.names[int(indices[where[np.argmax(norms == 0)]])]
                raise ZestError(
                    f"{name}: expected a nonzero signature for the cosine distance, got an all-zero signature "
                    "(a constant model?)"
                )
            units /= norms[:, None, None]
            block.positions[int(count)], block.units[int(count)] = where, units
        return block


def block_distances(a: _Block, b: _Block, align: str = "auto") -> np.ndarray:
    """Distances between every model of block ``a`` (rows) and of block ``b`` (columns)."""
    result = np.empty((a.size, b.size))
    for count_a, units_a in a.units.items():
        for count_b, units_b in b.units.items():
            method = alignment_method(align, count_a, count_b)
            if method is None:
                similarity = units_a.reshape(len(units_a), -1) @ units_b.reshape(len(units_b), -1).T
                part = np.clip(1.0 - similarity, 0.0, 2.0)
            else:
                part = _aligned_distances(units_a, units_b, method)
            result[np.ix_(a.positions[count_a], b.positions[count_b])] = part
    return result


def _aligned_distances(units_a: np.ndarray, units_b: np.ndarray, method: str) -> np.ndarray:
    """Cosine distances after class matching, for every pair of (n_a, C_A, ΣK) and (n_b, C_B, ΣK) models.

    Each model was divided by one positive number (its norm), which changes neither the class
    cosines the matching uses nor the cosine distance of the matched rows.
    """
    (n_a, classes_a, width), (n_b, classes_b, _) = units_a.shape, units_b.shape
    step_a, step_b = max(1, ALIGN_ROWS // classes_a), max(1, ALIGN_ROWS // classes_b)
    result = np.empty((n_a, n_b))
    for start_a in range(0, n_a, step_a):
        part_a = units_a[start_a:start_a + step_a]
        for start_b in range(0, n_b, step_b):
            part_b = units_b[start_b:start_b + step_b]
            gram = (part_a.reshape(-1, width) @ part_b.reshape(-1, width).T).reshape(
                len(part_a), classes_a, len(part_b), classes_b
            ).transpose(0, 2, 1, 3)  # (pairs a, pairs b, C_A, C_B): ⟨row of A, row of B⟩
            result[start_a:start_a + len(part_a), start_b:start_b + len(part_b)] = _matched_distance(
                gram, np.linalg.norm(part_a, axis=2), np.linalg.norm(part_b, axis=2), method
            )
    return result


def _matched_distance(gram: np.ndarray, norms_a: np.ndarray, norms_b: np.ndarray, method: str) -> np.ndarray:
    """``1 − cos`` of the matched class rows, for a (n_a, n_b, C_A, C_B) array of row inner products."""
    n_a, n_b, classes_a, classes_b = gram.shape
    outer = norms_a[:, None, :, None] * norms_b[None, :, None, :]
    # A zero class row is at cosine distance 1 from every row, as in class_cost_matrix.
    cost = 1.0 - np.divide(gram, outer, out=np.zeros_like(gram), where=outer > 0)
    cost = cost.reshape(n_a * n_b, classes_a, classes_b)
    rows, cols = batched_matching(cost, method)
    pairs = np.arange(n_a * n_b)[:, None]
    flat_gram = gram.reshape(n_a * n_b, classes_a, classes_b)
    row_norms_a = np.broadcast_to(norms_a[:, None, :], (n_a, n_b, classes_a)).reshape(n_a * n_b, classes_a)
    row_norms_b = np.broadcast_to(norms_b[None, :, :], (n_a, n_b, classes_b)).reshape(n_a * n_b, classes_b)
    dot = flat_gram[pairs, rows, cols].sum(axis=1)
    squared_a, squared_b = (row_norms_a[pairs, rows] ** 2).sum(axis=1), (row_norms_b[pairs, cols] ** 2).sum(axis=1)
    return cosine_from_products(dot, squared_a, squared_b).reshape(n_a, n_b)


def _blocks(count: int, block_size: int) -> list[range]:
    return [range(start, min(start + block_size, count)) for start in range(0, count, block_size)]


def pair_distances(
    stack: SignatureStack,
    rows: Sequence[int],
    cols: Sequence[int],
    *,
    align: str = "auto",
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> np.ndarray:
    """Zest cosine distances between the stack's models ``rows`` and ``cols`` (len(rows) × len(cols)).

    Block by block, as :func:`hub_distance_matrix`; for one suspect against a hub, ``rows`` is the
    suspect alone. ``align`` is :func:`~zest_core.pipeline.distance.zest_distance`'s.
    """
    check_int("block_size", block_size, minimum=1)
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    result = np.empty((len(rows), len(cols)))
    for row_block in _blocks(len(rows), block_size):
        a = _Block.read(stack, rows[row_block.start:row_block.stop])
        for col_block in _blocks(len(cols), block_size):
            b = _Block.read(stack, cols[col_block.start:col_block.stop])
            result[row_block.start:row_block.stop, col_block.start:col_block.stop] = block_distances(a, b, align)
    return result


def hub_distance_matrix(
    stack: SignatureStack,
    *,
    align: str = "auto",
    block_size: int = DEFAULT_BLOCK_SIZE,
    out: str | os.PathLike | None = None,
    order: Sequence[int] | None = None,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """The M × M Zest cosine distance matrix of a stack of signatures, computed blockwise.

    Parameters
    ----------
    stack : SignatureStack
    align : {"auto", "none", "greedy", "hungarian"}
        As in :func:`~zest_core.pipeline.distance.zest_distance`: "auto" matches classes (greedily)
        only for models whose class counts differ.
    block_size : int
        Models per block: memory grows as block_size × C × ΣK (two blocks), time does not depend on it
        beyond the efficiency of one matrix product.
    out : path, optional
        Write the matrix to this ``.npy`` file block by block and return it memory-mapped read-only,
        instead of building it in memory.
    order : sequence of int, optional
        The stack's models in the matrix's order (default: the stack's own order, all of them).
    progress : callable (done, total, stage), optional
        Called after every block of pairs with stage "distances".

    Returns
    -------
    ndarray (M, M)
        Symmetric with a zero diagonal; entry (i, j), i < j, is ``zest_distance(i, j)`` of the
        stack's models up to float64 rounding (1e-15).

    Raises
    ------
    ZestError
        For an unknown ``align``, ``align="none"`` with different class counts, or an all-zero
        signature (naming the model).
    """
    check_int("block_size", block_size, minimum=1)
    order = np.arange(len(stack)) if order is None else np.asarray(order, dtype=np.int64)
    count = len(order)
    blocks = _blocks(count, block_size)
    total, done = len(blocks) * (len(blocks) + 1) // 2, 0
    writer = _NpyWriter(out, count) if out is not None else None
    result = None if writer is not None else np.zeros((count, count))
    try:
        for i, block_i in enumerate(blocks):
            a = _Block.read(stack, order[block_i.start:block_i.stop])
            for j in range(i, len(blocks)):
                block_j = blocks[j]
                b = a if j == i else _Block.read(stack, order[block_j.start:block_j.stop])
                part = block_distances(a, b, align)
                if j == i:  # the upper triangle mirrored, so that the matrix is exactly symmetric
                    part = np.triu(part, 1) + np.triu(part, 1).T
                if writer is not None:
                    writer.write(block_i.start, block_j.start, part)
                    if j != i:
                        writer.write(block_j.start, block_i.start, part.T)
                else:
                    result[block_i.start:block_i.stop, block_j.start:block_j.stop] = part
                    result[block_j.start:block_j.stop, block_i.start:block_i.stop] = part.T
                done += 1
                if progress is not None:
                    progress(done, total, "distances")
    finally:
        if writer is not None:
            writer.close()
    return result if writer is None else np.load(writer.path, mmap_mode="r")


class _NpyWriter:
    """An M × M float64 ``.npy`` file written one rectangle at a time (one positioned write per row)."""

    def __init__(self, path: str | os.PathLike, count: int) -> None:
        self.path, self.count = Path(path), count
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = np.lib.format.open_memmap(self.path, mode="w+", dtype=np.float64, shape=(count, count))
        self.offset = header.offset
        del header  # the header is written; the data follows by positioned writes, never mapped
        self.fd = os.open(self.path, os.O_WRONLY)

    def write(self, row: int, col: int, part: np.ndarray) -> None:
        part = np.ascontiguousarray(part, dtype=np.float64)
        for k in range(part.shape[0]):
            os.pwrite(self.fd, part[k].tobytes(), self.offset + ((row + k) * self.count + col) * 8)

    def close(self) -> None:
        os.close(self.fd)
