"""Progress of an analysis in training runs of the budget, reported to a callback."""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[str, float, float], None]
"""Called as ``callback(stage, done, total)``; may raise to cancel the analysis."""


class Progress:
    def __init__(self, total: float, callback: ProgressCallback | None = None) -> None:
        self.total, self.done, self.stage = total, 0.0, "start"
        self.callback = callback

    def enter(self, stage: str) -> None:
        self.stage = stage
        self._report()

    def update(self, done: float) -> None:
        """Set the work done so far (clamped to the total)."""
        self.done = min(self.total, max(self.done, done))
        self._report()

    def finish(self) -> None:
        self.done = self.total
        self.enter("done")

    def _report(self) -> None:
        if self.callback:
            self.callback(self.stage, self.done, self.total)
