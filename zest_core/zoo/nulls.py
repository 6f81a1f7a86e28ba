"""The matched null of a zoo comparison: which unrelated models a suspect is judged against.

For a reference model P and a suspect S, the unrelated models are those **trained from scratch for
S's task, with S's architecture**, that share no lineage with P or with S. This is how ModelDiff's
benchmark picks its negatives (models trained from scratch on each target dataset, per architecture)
and what the Zest authors' README prescribes (≥ 5 pairs of independently trained models of the same
(dataset, architecture) combinations as the compared pair). A pooled baseline over other tasks or
architectures is never used: unrelated distances depend strongly on both.

References
----------
Li et al., "ModelDiff: Testing-Based DNN Similarity Comparison for Model Reuse Detection", ISSTA 2021.
Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ZooError
from .manifest import INDEPENDENT_RELATIONS


@dataclass(frozen=True)
class MatchedNull:
    """The unrelated models of one comparison and why they match.

    Attributes
    ----------
    reference, suspect : str
    models : tuple of str
        Models trained from scratch for the suspect's task with its architecture, unrelated to both.
    task, arch : str
        The suspect's task and architecture, which every null model shares.
    excluded : tuple of str
        Models of that task and architecture left out because they share a lineage with the
        reference or the suspect (or are one of them).
    reason : str
        One sentence for people.
    """

    reference: str
    suspect: str
    models: tuple[str, ...]
    task: str
    arch: str
    excluded: tuple[str, ...]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference, "suspect": self.suspect, "models": list(self.models),
            "task": self.task, "arch": self.arch, "excluded": list(self.excluded), "reason": self.reason,
        }


def lineage_root(zoo: Any, name: str) -> str:
    """The model at the root of ``name``'s lineage: itself if it was trained from scratch."""
    entry = _entry(zoo, name)
    return name if entry.relation in INDEPENDENT_RELATIONS else (entry.source or name)


def family(zoo: Any, name: str) -> set[str]:
    """Every zoo model that shares ``name``'s lineage root: its ancestors, descendants and siblings."""
    root = lineage_root(zoo, name)
    return {other for other in zoo.entries if lineage_root(zoo, other) == root}


def matched_null(zoo: Any, reference: str, suspect: str) -> MatchedNull:
    """The unrelated models that a comparison of ``reference`` with ``suspect`` is judged against.

    Parameters
    ----------
    zoo : Zoo
    reference, suspect : str
        Names of zoo models.

    Returns
    -------
    MatchedNull
        Possibly with no models: the caller must then report that no calibrated verdict exists.
    """
    target = _entry(zoo, suspect)
    relatives = family(zoo, reference) | family(zoo, suspect)
    same_kind = [
        name for name, entry in zoo.entries.items()
        if entry.relation in INDEPENDENT_RELATIONS and entry.task == target.task and entry.arch == target.arch
    ]
    models = tuple(name for name in same_kind if name not in relatives)
    excluded = tuple(name for name in same_kind if name in relatives)
    reason = (
        f"{len(models)} model(s) trained from scratch for the suspect's task ({target.task!r}) with its "
        f"architecture ({target.arch}), sharing no lineage with {reference} or {suspect}"
    )
    if excluded:
        reason += f"; left out as relatives: {', '.join(excluded)}"
    return MatchedNull(reference, suspect, models, target.task, target.arch, excluded, reason)


def _entry(zoo: Any, name: str) -> Any:
    try:
        return zoo.entries[name]
    except KeyError:
        raise ZooError(f"{name}: expected a model of the zoo at {zoo.root}, got no such name") from None
