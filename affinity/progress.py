"""Progress of an analysis in work units (training steps), reported to a callback."""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``callback(stage, done, total)``; may raise to cancel the analysis."""


class Progress:
    def __init__(self, total: int, callback: ProgressCallback | None = None) -> None:
        self.total, self.done, self.stage = total, 0, "start"
        self.callback = callback

    def enter(self, stage: str) -> None:
        self.stage = stage
        self._report()

    def tick(self, units: int = 1) -> None:
        self.done = min(self.total, self.done + units)
        self._report()

    def _report(self) -> None:
        if self.callback:
            self.callback(self.stage, self.done, self.total)
