"""A progress bar on stderr for the engine's ``progress(done, total, stage)`` callbacks."""
from __future__ import annotations

import sys

from tqdm import tqdm


class ProgressBar:
    """A tqdm bar on stderr fed by ``compute_signature``'s ``progress(done, total, stage)`` callback.

    The bar restarts, with the stage as its description, whenever the stage changes. Setting
    ``TQDM_DISABLE=1`` hides it. Use it as a context manager, so that the bar is closed (and the
    terminal line cleared) even when the computation fails.

    Parameters
    ----------
    label : str
        Written before the stage in the bar's description, e.g. ``"model 1/2 (a.pt): "``.
    """

    def __init__(self, label: str = "") -> None:
        self.label = label
        self._bar: tqdm | None = None
        self._stage: str | None = None

    def __call__(self, done: int, total: int, stage: str) -> None:
        """Show ``done`` of ``total`` items of ``stage``."""
        if stage != self._stage:
            self._stage = stage
            self._restart(total, f"{self.label}{stage}")
        self._bar.update(done - self._bar.n)

    def _restart(self, total: int, description: str) -> None:
        if self._bar is None:
            self._bar = tqdm(
                total=total, desc=description, file=sys.stderr, unit="img", leave=False, dynamic_ncols=True
            )
        else:
            self._bar.set_description(description, refresh=False)
            self._bar.reset(total=total)

    def close(self) -> None:
        """Close the bar, if one was shown; a later call starts a new one."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
