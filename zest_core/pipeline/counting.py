"""Counting the queries made of a black-box model: the calls, the images, and the shares a budget holds back.

Every image a model is sent is counted (:class:`QueryCount`), so that reports state queries measured,
never estimated, and a ``--budget`` is kept.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

# The images of the first batch that ``check_repeatable`` asks about a second time.
REPEAT_CHECK_IMAGES = 16


# The most images a model's fingerprint may have cost (an endpoint without a model_id is fingerprinted by
# its answers to the protocol's 3 probe images). They come out of the repeat check's share of a budget.
MAX_FINGERPRINT_IMAGES = 3


def fingerprint_queries(model: Any) -> int:
    """Images a model (or the model it wraps, through ``.model``) spent on its own fingerprint: 0 for most."""
    for _ in range(8):  # wrappers of wrappers, bounded
        spent = getattr(model, "fingerprint_images", None)
        if isinstance(spent, int):
            return spent
        model = getattr(model, "model", None)
        if model is None:
            return 0
    return 0


@dataclass
class QueryCount:
    """The queries made of a black-box model: how many calls, and how many images they held in all.

    A suspect behind a metered API is paid per query: these counts are the cost of a comparison.
    :func:`run_model` adds every call it makes to one (the repeat check's second call included);
    an :class:`~zest_core.EndpointModel` keeps its own, of the HTTP requests it actually sent.

    Attributes
    ----------
    calls : int
        Calls of the model (batches; HTTP requests for an endpoint's own count).
    images : int
        Images in those calls.
    """

    calls: int = 0
    images: int = 0

    def add(self, images: int, calls: int = 1) -> None:
        """Count ``calls`` more calls holding ``images`` images in all."""
        self.calls += int(calls)
        self.images += int(images)

    def __add__(self, other: "QueryCount") -> "QueryCount":
        if not isinstance(other, QueryCount):
            return NotImplemented
        return QueryCount(self.calls + other.calls, self.images + other.images)

    def __iadd__(self, other: "QueryCount") -> "QueryCount":
        """In place, so that a counter handed down keeps counting (``counter += made``)."""
        if not isinstance(other, QueryCount):
            return NotImplemented
        self.add(other.images, other.calls)
        return self

    def to_dict(self) -> dict[str, int]:
        return {"calls": self.calls, "images": self.images}

    @classmethod
    def from_dict(cls, counts: Mapping[str, Any] | None) -> "QueryCount | None":
        """The count a ``to_dict()`` holds (as a file stores it), or None when there is none or it is malformed."""
        if not isinstance(counts, Mapping):
            return None
        values = [counts.get("calls"), counts.get("images")]
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in values):
            return None
        return cls(int(values[0]), int(values[1]))
