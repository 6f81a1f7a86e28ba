"""Suspect search: rank a hub's models by their Zest distance to a suspect, with calibrated verdicts.

``search_hub(suspect, hub, refset)`` computes the signatures of the suspect and of every hub model
(any backend), ranks the hub by cosine distance to the suspect, and for the K closest models H asks
the audit's question, "is the suspect derived from H?": the distance d(H, S) is judged against the
distances d(H, Uⱼ) of the matched null (:func:`zest_core.explain.significance.decide_related`, as
:func:`zest_core.studies.audit.audit` does). The null is the models trained from scratch for the
suspect's task with its architecture, related neither to H nor to S, which a zoo manifest gives
(:func:`zest_core.zoo.nulls.matched_null`); for other hubs the caller names unrelated models, and
without them the verdict is "inconclusive", with the reason.

References
----------
Jia et al., "A Zest of LIME: Towards Architecture-Independent Model Distances", ICLR 2023.
Li et al., "ModelDiff: Testing-Based DNN Similarity Comparison for Model Reuse Detection", ISSTA 2021
(negatives trained from scratch per task and architecture).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .._shared.checks import check_int, check_number
from ..errors import ZestError
from ..explain.significance import DEFAULT_ALPHA, Decision, decide_related
from ..pipeline.config import ZestConfig
from ..pipeline.reference import ReferenceSet
from ..zoo.nulls import ModelFacts, check_null, matched_null
from .backend import ModelFailure, ModelSource
from .catalog import Hub, HubModel
from .matrix import DEFAULT_BLOCK_SIZE, pair_distances
from .signatures import SignatureRun, compute_signatures

DEFAULT_TOP = 10
UNRELATED_PREFIX = "unrelated:"


@dataclass(frozen=True)
class Candidate:
    """One of the hub models closest to the suspect, with its verdict.

    Attributes
    ----------
    rank : int
        1 for the closest.
    name : str
    distance : float
        Zest cosine distance d(H, S).
    decision : Decision
        "related", "not detected" or "inconclusive" against the null below.
    null_models : tuple of str
    null_reason : str
    """

    rank: int
    name: str
    distance: float
    decision: Decision
    null_models: tuple[str, ...]
    null_reason: str

    def to_dict(self) -> dict[str, Any]:
        d = self.decision
        return {
            "rank": self.rank, "model": self.name, "distance": self.distance, "verdict": d.verdict,
            "p_value": d.p_value, "rank_p_value": d.rank_p_value, "reason": d.reason,
            "null": {"models": list(self.null_models), "distances": dict(zip(self.null_models, d.null_distances)),
                     "reason": self.null_reason},
        }


@dataclass
class SearchResult:
    """The ranking of a hub against a suspect, the verdicts of its top models, and the run behind them.

    Attributes
    ----------
    suspect : str
    candidates : list of Candidate
        The ``top`` closest hub models, closest first.
    ranking : list of (str, float)
        Every hub model that was computed, by distance (ties by name).
    failures : list of ModelFailure
        Hub (or unrelated) models whose signature could not be computed; they are not ranked.
    run : SignatureRun
    alpha : float
    align : str
    """

    suspect: str
    candidates: list[Candidate]
    ranking: list[tuple[str, float]]
    failures: list[ModelFailure]
    run: SignatureRun
    alpha: float
    align: str
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "suspect": self.suspect, "alpha": self.alpha, "align": self.align, "metric": "cosine",
            "candidates": [c.to_dict() for c in self.candidates],
            "ranking": [{"model": name, "distance": d} for name, d in self.ranking],
            "failures": [f.to_dict() for f in self.failures],
            "signatures": {"computed": len(self.run.computed), "cached": len(self.run.cached),
                           "seconds": self.run.seconds, "backend": self.run.backend, "slots": self.run.slots},
            **self.info,
        }


def search_hub(
    suspect: str | HubModel,
    hub: Hub,
    refset: ReferenceSet,
    config: ZestConfig | None = None,
    *,
    top: int = DEFAULT_TOP,
    alpha: float = DEFAULT_ALPHA,
    align: str = "greedy",
    unrelated: Mapping[str, ModelSource] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    **backend: Any,
) -> SearchResult:
    """Rank the hub's models by Zest distance to the suspect; calibrated verdicts for the ``top`` closest.

    Parameters
    ----------
    suspect : str or HubModel
        A model spec, or the name of a hub model (``zoo:NAME`` too, for a zoo hub: then the
        manifest gives the matched null).
    hub : Hub
    refset : ReferenceSet
    config : ZestConfig, optional
    top : int, default 10
    alpha : float, default 0.05
    align : {"auto", "none", "greedy", "hungarian"}, default "greedy"
        The suspect's class order is unknown, so its classes are matched (as ``zest audit`` does).
    unrelated : mapping of str to model source, optional
        Models trained independently for the suspect's task with its architecture, none derived from
        any hub model the verdicts are about: the null of every verdict, instead of the manifest's.
    block_size : int
        Of the distance phase (:func:`~zest_core.hub.matrix.pair_distances`).
    **backend
        :func:`~zest_core.hub.backend.compute_signatures`'s options (backend, cache, retries, ...).

    Returns
    -------
    SearchResult

    Raises
    ------
    ZestError
        If the suspect's own signature cannot be computed, or no hub model's can.
    """
    check_int("top", top, minimum=1)
    check_number("alpha", alpha, minimum=0.0, maximum=1.0, strict=True)
    target = _suspect_model(suspect, hub)
    in_hub = hub.find(target.name) is target
    jobs: dict[str, ModelSource] = {model.name: model for model in hub.models}
    if not in_hub:
        jobs[target.name] = target
    unrelated_names = {name: UNRELATED_PREFIX + name for name in (unrelated or {})}
    for name, source in (unrelated or {}).items():
        jobs[unrelated_names[name]] = source
    run = compute_signatures(jobs, refset, config, **backend)
    failed = {f.name: f for f in run.failures}
    if target.name in failed:
        raise ZestError(f"{target.name}: the suspect's signature could not be computed: {failed[target.name].error}")
    done = set(run.stack.names)
    ranked_names = [m.name for m in hub.models if m.name in done and m.name != target.name]
    if not ranked_names:
        raise ZestError(f"hub: expected at least one model besides the suspect with a signature, got none of {len(hub)}")
    stack = run.stack
    suspect_index = stack.index(target.name)
    distances = pair_distances(stack, [suspect_index], run.order(ranked_names), align=align, block_size=block_size)[0]
    order = sorted(range(len(ranked_names)), key=lambda k: (distances[k], ranked_names[k]))
    ranking = [(ranked_names[k], float(distances[k])) for k in order]
    null_of = _null_finder(hub, target.name, in_hub, [unrelated_names[n] for n in unrelated or {}], done, stack)
    candidates = []
    for rank, (name, distance) in enumerate(ranking[:top], start=1):
        null_models, reason = null_of(name)
        null_distances = (
            pair_distances(stack, [stack.index(name)], run.order(null_models), align=align, block_size=block_size)[0]
            if null_models else np.array([])
        )
        decision = decide_related(distance, null_distances.tolist(), alpha=alpha)
        shown = tuple(n.removeprefix(UNRELATED_PREFIX) for n in null_models)
        candidates.append(Candidate(rank, name, distance, decision, shown, reason))
    return SearchResult(
        suspect=target.name, candidates=candidates, ranking=ranking, failures=run.failures, run=run,
        alpha=alpha, align=align, info={"hub": hub.source, "hub_models": len(hub)},
    )


def _suspect_model(suspect: str | HubModel, hub: Hub) -> HubModel:
    if isinstance(suspect, HubModel):
        return hub.find(suspect.name) or suspect
    return hub.find(suspect) or HubModel(suspect, suspect)


def _null_finder(hub: Hub, suspect: str, in_hub: bool, unrelated: list[str], done: set[str], stack: Any):
    """A function: hub model H → (the null models of "is the suspect derived from H?", why those).

    Named unrelated models are checked once by :func:`~zest_core.zoo.check_null` (the suspect among
    them, two copies of one model, another class count: refused, naming ``--unrelated``); a hub
    model H that is itself one of them gets no verdict (its null would contain it), never a smaller null.
    """
    if unrelated:
        computed = [name for name in unrelated if name in done]

        def facts(name: str) -> ModelFacts:
            index = stack.index(name)
            return ModelFacts(name.removeprefix(UNRELATED_PREFIX), stack.fingerprints[index],
                              int(stack.num_classes[index]))

        named = [facts(n) for n in computed]
        check_null(ModelFacts("(each hub model)"), facts(suspect), named)
        reason = f"{len(computed)} unrelated model(s) named by the caller"

        def named_null_of(name: str) -> tuple[list[str], str]:
            mine = facts(name)
            clash = [f.name for f in named if f.name == mine.name or (f.fingerprint and f.fingerprint == mine.fingerprint)]
            if clash:
                return [], f"refused: {name} is itself among --unrelated ({', '.join(clash)}); a model cannot be in its own null"
            return computed, reason

        return named_null_of
    suspect_entry = hub.entry_name(suspect) if in_hub else None
    if suspect_entry is None:
        why = "the hub has no manifest" if hub.zoo is None else "the suspect is not in the hub's manifest"
        reason = f"no matched null: {why}; name models trained independently for the suspect's task and architecture"
        return lambda name: ([], reason)

    def find(name: str) -> tuple[list[str], str]:
        null = matched_null(hub.zoo, hub.entry_name(name), suspect_entry)
        models = [n for n in null.models if n in done]
        missing = len(null.models) - len(models)
        return models, null.reason + (f"; {missing} left out: no signature" if missing else "")

    return find
