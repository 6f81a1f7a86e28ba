"""Progress of a run of several signatures: overall fraction, current stage and an ETA (no Streamlit here)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from zest_core import ZestError

STAGE_WORDS = {
    "segment": "segmenting reference images",
    "query": "querying perturbed images",
    "fit": "fitting local models",
    "cached": "read from the signature cache",
}


@dataclass
class RunProgress:
    """Tracks ``compute_signature``'s ``progress(done, total, stage)`` calls over a list of jobs.

    Each job (one model's signature) weighs the same in the overall fraction; inside a job the query
    stage, which takes nearly all the time, drives the fraction. The ETA is the current job's
    remaining queries at its measured rate, plus the remaining jobs at the mean duration of the jobs
    computed so far (a cached job takes no time and does not count), or at the current job's
    projected duration before any finished.

    Parameters
    ----------
    jobs : sequence of str
        Names of the jobs, in the order they run.
    clock : callable
        Returns seconds; injectable for tests.
    """

    jobs: Sequence[str]
    clock: Callable[[], float] = time.perf_counter
    index: int = 0
    stage: str = "starting"
    done: int = 0
    total: int = 1
    _job_start: float = field(default=0.0, init=False)
    _stage_start: float = field(default=0.0, init=False)
    _durations: list[float] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if not self.jobs:
            raise ZestError("jobs: expected at least one job, got none")
        self._job_start = self._stage_start = self.clock()

    def start_job(self, index: int) -> None:
        """Mark job ``index`` as started (the previous one finished)."""
        now = self.clock()
        if index > self.index and self.stage not in ("cached", "starting"):
            self._durations.append(now - self._job_start)
        self.index, self.stage, self.done, self.total = index, "starting", 0, 1
        self._job_start = self._stage_start = now

    def update(self, done: int, total: int, stage: str) -> None:
        """The engine's progress callback for the current job."""
        if stage != self.stage:
            self._stage_start = self.clock()
        self.stage, self.done, self.total = stage, int(done), max(1, int(total))

    def job_fraction(self) -> float:
        if self.stage in ("cached", "fit"):
            return 1.0
        if self.stage == "query":
            return min(1.0, self.done / self.total)
        return 0.0

    def fraction(self) -> float:
        """Overall fraction done, in [0, 1]."""
        return min(1.0, (self.index + self.job_fraction()) / len(self.jobs))

    def eta(self) -> float | None:
        """Seconds left, or None before there is a rate to go by."""
        now = self.clock()
        remaining_jobs = len(self.jobs) - self.index - 1
        current_left, projected = None, None
        if self.stage in ("cached", "fit"):
            current_left = 0.0
        elif self.stage == "query" and self.done > 0:
            rate = (now - self._stage_start) / self.done
            current_left = rate * (self.total - self.done)
            projected = (now - self._job_start) + current_left
        per_job = sum(self._durations) / len(self._durations) if self._durations else projected
        if current_left is None:
            current_left = per_job
        if current_left is None or (remaining_jobs and per_job is None):
            return None
        return current_left + remaining_jobs * (per_job or 0.0)

    def text(self) -> str:
        """A one-line description: job, stage, counts and ETA."""
        job = f"{self.jobs[self.index]} ({self.index + 1}/{len(self.jobs)})"
        words = STAGE_WORDS.get(self.stage, self.stage)
        counts = f" {self.done:,}/{self.total:,}" if self.stage in ("query", "segment") else ""
        eta = self.eta()
        eta_text = "ETA …" if eta is None else f"ETA {format_seconds(eta)}"
        return f"{job}: {words}{counts} · {eta_text}"


def format_seconds(seconds: float) -> str:
    """``'42 s'`` or ``'3 min 05 s'``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s"
