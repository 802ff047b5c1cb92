"""Progress of an analysis in training runs of the budget, reported to a callback."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

PACE_STEPS = 3
"""Steps of a stage before its pace enters the projection."""

ProgressCallback = Callable[[str, float, float], None]
"""Called as ``callback(stage, done, total)``; may raise to cancel the analysis. ``done``:
training runs so far; ``total``: the runs there would be at the end at the pace so far, so
that ``done / total`` is the share of the wall time and an ETA read from it holds (see
``Progress``)."""


class Progress:
    """The work done (``done``, training runs) against the plan (``total``, the runs planned
    by the end), reported with a projected total that makes the share a share of time.

    Networks of one stage train stacked, many times faster per run than one network alone,
    and each stops at its own epoch; so runs done are not time spent. Where a stage tells its
    networks' planned steps (``enter``) and its steps are counted (``step``, with the networks
    still training), the seconds left are the stage's remaining network-steps at the stage's
    own seconds per network-step, then the runs the plan holds after the stage at the same
    pace. A live network (the longest plans taken as the live ones) is expected to stop
    halfway between now and its end: its planned steps, or sooner where networks have
    stopped, when the share stopped so far, growing at its rate so far, would reach all; the
    reported total is ``done`` plus those seconds at the pace so far. A stage's pace is read
    from its ``PACE_STEPS``-th step on (its first steps carry the stack's setup); until then,
    and in a stage without plans (measures, candidates), the last projection holds: the work
    left, at the ratio of projected to planned work left seen at the last report. Before any
    (before the unit is known) it is the plan itself. The race and the confirmation set the
    plan to what they are expected to train, below the budget where they stop sooner. Wall
    time enters the report only, never a plan.
    """

    def __init__(self, total: float, callback: ProgressCallback | None = None) -> None:
        self.total, self.done, self.stage = total, 0.0, "start"
        self.callback = callback
        self.started = time.perf_counter()
        self.unit_steps = 0
        """Network-steps of one training run, once known (the analysis sets it)."""
        self._plans: list[int] = []
        self._stage_started = self.started
        self._steps = self._network_steps = self._live = 0
        self._done_before = 0.0
        self._stage_steps = self._chunk = 0
        self._ratio: float | None = None
        """Projected work left over planned work left, at the last report."""

    def enter(self, stage: str, planned_steps: Sequence[int] = ()) -> None:
        """A new stage; ``planned_steps``: the planned steps of each network it trains."""
        self.stage = stage
        self._plans = sorted(planned_steps, reverse=True)
        self._stage_started = time.perf_counter()
        self._steps = self._network_steps = 0
        self._live = len(self._plans)
        self._done_before = self.done
        self._stage_steps = sum(self._plans)
        self._report()

    def step(self, live: int) -> None:
        """One step of the stage's stack, ``live`` networks still training. A stack only
        loses networks; more live than before is the next chunk of the stage's networks,
        trained after the last: the finished chunk's plans are dropped (as many as it
        started with) and its steps no longer count."""
        if live > self._live and self._steps:
            self._plans = self._plans[self._chunk:]
            self._steps = 0
        if self._steps == 0:
            self._chunk = live
        self._steps += 1
        self._network_steps += live
        self._live = live

    def update(self, done: float) -> None:
        """Set the work done so far (never less than before); a plan it passes (networks
        that train longer than planned) grows to it."""
        self.done = max(self.done, done)
        self.total = max(self.total, self.done)
        self._report()

    def finish(self) -> None:
        self.done, self._ratio = self.total, None
        self.enter("done")

    def projected(self) -> float:
        """The total to report: the plan, or where the pace is known, the runs at the end at
        the pace so far (see the class docstring)."""
        elapsed = time.perf_counter() - self.started
        if not (self.unit_steps and self._plans and self._steps >= PACE_STEPS
                and self.done > 0):
            if self._ratio is None:
                return self.total
            return self.done + self._ratio * max(0.0, self.total - self.done)
        pace = (time.perf_counter() - self._stage_started) / self._network_steps
        # the live networks stop at an even rate from now until their planned end, or, where
        # some have stopped, until the rate seen so far leaves none
        alive = self._live / max(self._chunk, 1)
        end = self._steps / (1 - alive) if alive < 1 else float("inf")
        left = sum(max(0.0, min(p, end) - self._steps) / 2
                   for p in self._plans[:self._live]) \
            + sum(min(p, end) / 2 for p in self._plans[self._chunk:])  # chunks not started
        after = max(0.0, self.total - self._done_before - self._stage_steps / self.unit_steps)
        seconds_left = (left + after * self.unit_steps) * pace
        return self.done + seconds_left * self.done / max(elapsed, 1e-9)

    def _report(self) -> None:
        total = max(self.done, self.projected())
        if self.unit_steps and self.done > 0 and self.total > self.done:
            self._ratio = (total - self.done) / (self.total - self.done)
        if self.callback:
            self.callback(self.stage, self.done, total)
