"""Progress shown to a person: a bar on a terminal, plain lines in a log.

A terminal gets tqdm's bar, redrawn in place. Output that is not a terminal (a file, CI, a
pipe) gets one line when the stage changes and at most one every ``LOG_SECONDS`` between, each
ending in a newline, never a carriage-return frame. Either way nothing shows in the first
``DELAY`` seconds, so a task set refused at once prints only its error.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

LOG_SECONDS = 10.0
DELAY = 1.0


class ProgressDisplay:
    """``show(stage, done, total)`` as work goes on; ``close()`` (or the ``with`` block's
    end) when it is over. ``unit`` names what ``done`` counts."""

    def __init__(self, unit: str, *, enabled: bool = True, stream: TextIO | None = None,
                 interactive: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.started = time.monotonic()
        self.last_line = -float("inf")
        self.stage, self.done, self.total = "", 0.0, 1.0
        self.bar: Any = None
        if enabled and self.interactive:
            from tqdm import tqdm

            self.bar = tqdm(total=1, unit=unit, dynamic_ncols=True, delay=DELAY,
                            mininterval=0.1, file=self.stream,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")

    def show(self, stage: str, done: float, total: float) -> None:
        new_stage = stage != self.stage
        self.stage, self.done, self.total = stage, done, max(total, 1e-12)
        if self.bar is not None:
            self.bar.total = self.total
            if new_stage:
                self.bar.set_description_str(stage, refresh=False)
            self.bar.n = done
            self.bar.refresh() if new_stage else self.bar.update(0)
        elif self.enabled:
            now = time.monotonic()
            if now - self.started >= DELAY and (new_stage or now - self.last_line >= LOG_SECONDS):
                self._line(now, eta=not new_stage)

    def _line(self, now: float, eta: bool = True) -> None:
        """A log line; the ETA only where the stage has reported before (at its start its
        pace is not known)."""
        elapsed = now - self.started
        share = min(1.0, self.done / self.total)
        left = f", about {_clock(elapsed * (1 - share) / share)} left" \
            if eta and 0 < share < 1 else ""
        print(f"{self.stage}: {100 * share:3.0f}% ({_clock(elapsed)} elapsed{left})",
              file=self.stream, flush=True)
        self.last_line = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> ProgressDisplay:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes:02d}:{secs:02d}"
