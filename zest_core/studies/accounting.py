"""What a comparison cost: the queries each method made of each model, measured, not derived from a formula.

A suspect behind a metered API is paid per query, so an audit reports, per model, the calls and
images its method took. Each method's per-model part counts its own queries in a
:class:`~zest_core.QueryCount` (a signature, ModelDiff's pair search and DDVs, the baselines' outputs);
a :class:`QueryLedger` keeps those counters per (method, model, part) and turns them into one entry
per model of the same shape for every method:

``{"calls": int, "images": int, "now": {"calls": int, "images": int}, "cached": bool}``

- ``calls``, ``images``: what the method's results for this model took, including what a result
  read from the cache records having taken (None when a file written before the counts were
  recorded does not say);
- ``now``: the queries made of the model in this run (0 for results read from the cache);
- ``cached``: whether a part was read from the cache instead of queried;
- ``parts``: the same per part, when the model took part in several ways (ModelDiff's source: the
  pair search and its own DDV);
- ``http``: for a model behind an HTTP endpoint, the requests and images its client actually sent
  (retries and the fingerprint's probe included), the endpoint's own count.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..pipeline.counting import QueryCount, REPEAT_CHECK_IMAGES
from ..pipeline.signature import Signature
from ..sources.endpoint import sent_queries

# Methods whose queries are the same per-model objects: both Zest metrics read one signature per model.
QUERY_FAMILIES = {"zest-cosine": "zest", "zest-l2": "zest"}


def query_family(method: str) -> str:
    """The name a method's queries are kept under: "zest" for every Zest metric, else the method itself."""
    return QUERY_FAMILIES.get(method, method)


@dataclass
class _Part:
    now: QueryCount = field(default_factory=QueryCount)
    took: QueryCount | None = None  # what the cached result records (None: not recorded); read only if cached
    cached: bool = False


class QueryLedger:
    """The queries one study made, per (method, model, part): made now, and what cached results record.

    Examples
    --------
    >>> ledger = QueryLedger()
    >>> ledger.counter("agreement", "suspect", "outputs").add(32)
    >>> ledger.entry("agreement", "suspect")["images"]
    32
    """

    def __init__(self) -> None:
        self._parts: dict[tuple[str, str], dict[str, _Part]] = {}

    def _part(self, method: str, model: str, part: str) -> _Part:
        return self._parts.setdefault((query_family(method), model), {}).setdefault(part, _Part())

    def counter(self, method: str, model: str, part: str) -> QueryCount:
        """The counter of the queries ``method``'s ``part`` makes of ``model`` now (one per part, kept)."""
        return self._part(method, model, part).now

    def track(self, method: str, model: str, part: str, counter: QueryCount) -> None:
        """Keep a per-model object's own counter (a ModelDiff's ``search_queries``) as ``part``'s."""
        self._part(method, model, part).now = counter

    def record(self, method: str, model: str, part: str, took: QueryCount | None) -> None:
        """What ``part``'s result took when it was computed; marked cached when no query of it was made now."""
        entry = self._part(method, model, part)
        entry.took, entry.cached = took, entry.now.calls == 0

    def models(self, method: str) -> list[str]:
        """The models ``method`` has queried (or read cached results of), in the order first seen."""
        family = query_family(method)
        return [model for fam, model in self._parts if fam == family]

    def entry(self, method: str, model: str) -> dict[str, Any]:
        """The queries of ``model`` by ``method``, in the shape of the module docstring (zeros if none)."""
        parts = self._parts.get((query_family(method), model), {})
        return query_entry({name: (p.now, p.took if p.cached else p.now, p.cached) for name, p in parts.items()})


def query_entry(parts: Mapping[str, tuple[QueryCount, QueryCount | None, bool]]) -> dict[str, Any]:
    """One model's entry from its parts, each (made now, what it took or None if unknown, read from the cache)."""
    now = sum((made for made, _, _ in parts.values()), QueryCount())
    took = [t for _, t, _ in parts.values()]
    total = None if any(t is None for t in took) else sum(took, QueryCount())
    entry: dict[str, Any] = {
        "calls": None if total is None else total.calls, "images": None if total is None else total.images,
        "now": now.to_dict(), "cached": any(cached for _, _, cached in parts.values()),
    }
    if len(parts) > 1:
        entry["parts"] = {
            name: {**_counts(t), "now": made.to_dict(), "cached": cached} for name, (made, t, cached) in parts.items()
        }
    return entry


def signature_queries(signature: Signature, now: QueryCount) -> dict[str, Any]:
    """The entry of one model whose Zest signature was computed (or read) with ``now`` counting the queries made.

    A signature read from the cache or a file made no query now, and reports what computing it took
    (``metadata["queries"]``), marked cached.
    """
    cached = now.calls == 0
    return query_entry({"signature": (now, signature.recorded_queries() if cached else now, cached)})


def signature_query_detail(num_images: int, num_samples: int) -> str:
    """What one model's Zest queries are, for people: N × L perturbed images, and the repeat check's batch."""
    return (f"N = {num_images} reference images × L = {num_samples} maskings per model, and the first "
            f"{REPEAT_CHECK_IMAGES} once more (the repeat check, unless non-determinism is allowed)")


def with_http(entry: dict[str, Any], model: Any) -> dict[str, Any]:
    """``entry`` with ``"http"``: the requests and images an endpoint model's client sent (unchanged for others)."""
    sent = sent_queries(model)
    return entry if sent is None else {**entry, "http": sent.to_dict()}


def queries_report(per_model: Mapping[str, Mapping[str, Any]], detail: str) -> dict[str, Any]:
    """What an audit records: the entry of every model, their totals (taken; made now) and what one query is.

    Returns
    -------
    dict
        ``per_model`` (name → entry), ``total`` (calls and images all the results took; None where an
        entry does not know), ``now`` (made in this run) and ``detail``.
    """
    known = [e for e in per_model.values() if e["calls"] is not None]
    total = None
    if len(known) == len(per_model):
        total = {"calls": sum(e["calls"] for e in known), "images": sum(e["images"] for e in known)}
    now = {key: sum(e["now"][key] for e in per_model.values()) for key in ("calls", "images")}
    return {"per_model": {name: dict(e) for name, e in per_model.items()}, "total": total, "now": now, "detail": detail}


def query_rows(queries: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """One row per method of a report's ``queries[method][model]``: models, images and calls per model, made now.

    Per model the smallest and largest count (ModelDiff's sources also ran the pair search); None
    where some model's counts were not recorded.
    """
    rows = []
    for method, entries in queries.items():
        known = [e for e in entries.values() if e["calls"] is not None]
        complete = bool(entries) and len(known) == len(entries)
        images = [e["images"] for e in known] if complete else []
        calls = [e["calls"] for e in known] if complete else []
        rows.append({
            "method": method, "models": len(entries),
            "images per model": (min(images), max(images)) if images else None,
            "calls per model": (min(calls), max(calls)) if calls else None,
            "images made now": sum(e["now"]["images"] for e in entries.values()),
        })
    return rows


def describe_entry(entry: Mapping[str, Any]) -> str:
    """One entry for people: "8,192 images in 33 calls (cached; none made now)"."""
    text = "not recorded (cached before query counts were kept)" if entry["calls"] is None else count_text(entry)
    now = entry["now"]
    if entry["cached"]:
        text += f" (cached; {'none' if now['calls'] == 0 else count_text(now)} made now)"
    if "http" in entry:
        sent = entry["http"]
        text += f"; HTTP: {_plural(sent['calls'], 'request')} sent, {_plural(sent['images'], 'image')} in them"
    return text


def count_text(counts: Mapping[str, Any]) -> str:
    """``{"calls": 33, "images": 8192}`` for people: "8,192 images in 33 calls"."""
    return f"{_plural(counts['images'], 'image')} in {_plural(counts['calls'], 'call')}"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _counts(count: QueryCount | None) -> dict[str, int | None]:
    return {"calls": None, "images": None} if count is None else count.to_dict()
