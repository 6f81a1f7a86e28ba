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

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch

from ..errors import NullError, ZooError
from ..pipeline.fingerprint import model_fingerprint
from ..sources.architectures import ARCHITECTURES
from .manifest import INDEPENDENT_RELATIONS

# The flag every null refusal names: the unrelated models come from it (or from the zoo's manifest).
UNRELATED_FLAG = "--unrelated"
# A model spec naming a zoo model; such models are known by their manifest entry too.
ZOO_PREFIX = "zoo:"


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
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference, "suspect": self.suspect, "models": list(self.models),
            "task": self.task, "arch": self.arch, "excluded": list(self.excluded), "reason": self.reason,
            "warnings": list(self.warnings),
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


@dataclass(frozen=True)
class ModelFacts:
    """What the null's integrity checks know of one model; None where it is not known.

    Attributes
    ----------
    name : str
        As the user named it (a spec, a zoo name, an upload).
    fingerprint : str or None
        Its content fingerprint (:func:`zest_core.model_fingerprint`): equal weights, equal fingerprint,
        whatever the name.
    num_classes : int or None
    input_shape : (C, H, W) or None
    arch : str or None
        Its architecture: the zoo manifest's, or the wrapped module's class.
    task : str or None
        What it was trained for, when known (the zoo manifest's task).
    """

    name: str
    fingerprint: str | None = None
    num_classes: int | None = None
    input_shape: tuple[int, ...] | None = None
    arch: str | None = None
    task: str | None = None


def model_facts(name: str, model: Any, *, arch: str | None = None, task: str | None = None,
                num_classes: int | None = None) -> ModelFacts:
    """The facts of a loaded model that the null checks compare: fingerprint, classes, input shape, architecture.

    Nothing is queried: the class count and input shape are those the model declares (a
    :class:`~zest_core.Classifier`'s ``class_names`` and ``input_shape``), the architecture the given
    one or else the class of the wrapped ``nn.Module`` (not a TorchScript one, whose class says nothing).
    """
    names = getattr(model, "class_names", None)
    shape = getattr(model, "input_shape", None)
    return ModelFacts(
        name=name, fingerprint=_content_fingerprint(model),
        num_classes=num_classes if num_classes is not None else (len(names) if names else None),
        input_shape=tuple(shape) if shape else None, arch=arch or _module_architecture(model), task=task,
    )


def zoo_facts(zoo: Any, name: str, model: Any) -> ModelFacts:
    """:func:`model_facts` of a zoo model, with its manifest's architecture, task and classes."""
    entry = _entry(zoo, name)
    return model_facts(name, model, arch=entry.arch, task=entry.task, num_classes=len(entry.classes))


def check_null(
    reference: ModelFacts, suspect: ModelFacts, unrelated: Sequence[ModelFacts], *, flag: str = UNRELATED_FLAG,
) -> tuple[str, ...]:
    """Refuse a null that would make the verdict wrong; return the warnings of one that is merely unusual.

    A matched null holds models trained independently for the suspect's task with its architecture
    (:mod:`zest_core.explain.significance`). Refused, with a :class:`~zest_core.errors.NullError` that
    names ``flag``:

    - the suspect or the reference in its own null, by name or by content fingerprint (the suspect
      among its own null makes the verdict "not detected" by construction);
    - two unrelated models with identical weights (by content fingerprint, whatever their names):
      one model counted twice narrows the null's spread;
    - a model whose class count, input shape or task differs from the suspect's, where both are known.

    An architecture that differs from the suspect's, where both are known, is a warning naming both.

    Parameters
    ----------
    reference, suspect : ModelFacts
    unrelated : sequence of ModelFacts
    flag : str, default "--unrelated"
        The flag (or form field) the unrelated models were named with, for the messages.

    Returns
    -------
    tuple of str
        The warnings, one sentence each.

    Raises
    ------
    NullError
    """
    warnings: list[str] = []
    seen: dict[str, str] = {}
    for model in unrelated:
        for role, other in (("suspect", suspect), ("reference", reference)):
            same_name = model.name == other.name
            same_weights = model.fingerprint is not None and model.fingerprint == other.fingerprint
            if same_name or same_weights:
                how = "is" if same_name else f"has the same weights as (content fingerprint {model.fingerprint})"
                raise NullError(
                    f"{flag}: expected models unrelated to the {role}, got {model.name}, which {how} the {role} "
                    f"{other.name}: a model cannot be part of its own null"
                )
        if model.fingerprint is not None:
            if model.fingerprint in seen:
                raise NullError(
                    f"{flag}: expected distinct unrelated models, got {seen[model.fingerprint]} and {model.name} "
                    f"with identical weights (content fingerprint {model.fingerprint}): one model would count twice"
                )
            seen[model.fingerprint] = model.name
        for what in ("num_classes", "input_shape", "task"):
            mine, theirs = getattr(model, what), getattr(suspect, what)
            if mine is not None and theirs is not None and mine != theirs:
                label = {"num_classes": "class count", "input_shape": "input shape", "task": "task"}[what]
                raise NullError(
                    f"{flag}: expected models of the suspect's {label} ({theirs}, {suspect.name}), got {model.name} "
                    f"with {label} {mine}: a matched null is trained for the suspect's task"
                )
        if model.arch is not None and suspect.arch is not None and model.arch != suspect.arch:
            warnings.append(
                f"{flag}: {model.name} has architecture {model.arch}, the suspect {suspect.name} has {suspect.arch}; "
                "a matched null shares the suspect's architecture, and distances depend on it"
            )
    return tuple(warnings)


def named_null(
    reference: ModelFacts, suspect: ModelFacts, unrelated: Sequence[ModelFacts], *,
    reason: str = "named with --unrelated", flag: str = UNRELATED_FLAG,
) -> MatchedNull:
    """The null of a comparison whose unrelated models the user named, checked by :func:`check_null`."""
    warnings = check_null(reference, suspect, unrelated, flag=flag)
    return MatchedNull(
        reference.name, suspect.name, tuple(m.name for m in unrelated), suspect.task or "unknown",
        suspect.arch or "unknown", (), reason, warnings,
    )


def resolve_null(
    reference: str,
    suspect: str,
    *,
    zoo: Any = None,
    models: Mapping[str, Any] | None = None,
    unrelated: Sequence[str] = (),
    reason: str = "named with --unrelated",
    flag: str = UNRELATED_FLAG,
) -> MatchedNull:
    """The one null resolver: the user's named models, checked, or else the zoo's matched null.

    Parameters
    ----------
    reference, suspect : str
        Names of the compared models (zoo names when the null comes from the zoo).
    zoo : Zoo, optional
        With no ``unrelated`` models named and both models in it, the null is
        :func:`matched_null`'s (its models are loaded to be checked).
    models : mapping of str to model, optional
        The loaded models by name (reference, suspect and every unrelated one), for their facts
        (:func:`model_facts`; a zoo model's, named or spelt ``zoo:NAME``, come from its manifest too).
    unrelated : sequence of str
        Models named by the user as trained independently for the suspect's task with its
        architecture; they take precedence over the zoo's.
    reason, flag : str
        Why the named models are the null, and the flag they came from, for people.

    Returns
    -------
    MatchedNull

    Raises
    ------
    NullError
        For a null :func:`check_null` refuses, or none at all: no named models and no zoo that has
        both models.
    """
    models = dict(models or {})

    def facts(name: str) -> ModelFacts:
        model = models.get(name)
        entry = name.removeprefix(ZOO_PREFIX)
        if zoo is not None and entry in zoo.entries:
            found = zoo_facts(zoo, entry, model) if model is not None else _manifest_facts(zoo, entry)
            return ModelFacts(name, found.fingerprint, found.num_classes, found.input_shape, found.arch, found.task)
        return model_facts(name, model) if model is not None else ModelFacts(name)

    if unrelated:
        return named_null(facts(reference), facts(suspect), [facts(u) for u in unrelated], reason=reason, flag=flag)
    if zoo is not None and reference in zoo.entries and suspect in zoo.entries:
        null = matched_null(zoo, reference, suspect)
        for name in null.models:
            if name not in models:
                models[name] = zoo.load(name)
        warnings = check_null(facts(reference), facts(suspect), [facts(u) for u in null.models], flag=flag)
        return MatchedNull(null.reference, null.suspect, null.models, null.task, null.arch, null.excluded,
                           null.reason, warnings)
    raise NullError(
        f"{flag}: expected the models trained independently for the suspect's task with its architecture "
        "(zoo models get them from the zoo's manifest); without them there is no calibrated verdict"
    )


def _manifest_facts(zoo: Any, name: str) -> ModelFacts:
    entry = _entry(zoo, name)
    return ModelFacts(name, fingerprint=None, num_classes=len(entry.classes), arch=entry.arch, task=entry.task)


def _module(model: Any) -> torch.nn.Module | None:
    """The ``nn.Module`` behind a model: a Classifier's wrapped one, or the model itself."""
    module = getattr(model, "module", None)
    if isinstance(module, torch.nn.Module):
        return module
    return model if isinstance(model, torch.nn.Module) else None


def _module_architecture(model: Any) -> str | None:
    """The architecture's registered name (``small_cnn``, as specs and the zoo spell it), else its class name."""
    module = _module(model)
    if module is None or isinstance(module, torch.jit.ScriptModule):
        return None
    registered = [name for name, builder in ARCHITECTURES.items() if builder is type(module)]
    return registered[0] if registered else type(module).__name__


def _content_fingerprint(model: Any) -> str | None:
    """The hash of a model's weights, whatever file or spec it was loaded from; its own fingerprint otherwise."""
    module = _module(model)
    return model_fingerprint(module if module is not None else model)
