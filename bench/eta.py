"""What a progress ETA would have shown during a run: the benchmarks' progress callback."""

from __future__ import annotations

import time


class EtaLog:
    """A progress callback that prints each new stage and records the projected total time
    (elapsed * total / done, what an ETA shows) every ``every`` seconds, from each stage's
    second report on (at its first, the stage's pace is not known yet)."""

    def __init__(self, every: float = 2.0) -> None:
        self.started, self.every = time.perf_counter(), every
        self.seen: list[str] = []
        self.projected: list[tuple[float, float, str]] = []  # (elapsed, projected, stage)

    def __call__(self, stage: str, done: float, total: float) -> None:
        elapsed = time.perf_counter() - self.started
        if done > 0 and stage in self.seen and \
                (not self.projected or elapsed - self.projected[-1][0] > self.every):
            self.projected.append((elapsed, elapsed * total / done, stage))
        if stage not in self.seen:
            self.seen.append(stage)
            print(f"  {elapsed:6.0f} s  {done:6.1f}/{total:.0f} runs  {stage}", flush=True)

    def errors(self, seconds: float) -> list[float]:
        """Each projected total relative to the actual ``seconds`` - 1, over the readings
        after the first stage (during it, the unit is not known)."""
        return [p / seconds - 1 for _, p, stage in self.projected if stage != self.seen[0]]

    def spread(self, seconds: float) -> tuple[tuple[float, float], int]:
        """The least and most of ``errors`` and their count."""
        later = self.errors(seconds)
        if not later:
            return (0.0, 0.0), 0
        return (min(later), max(later)), len(later)
