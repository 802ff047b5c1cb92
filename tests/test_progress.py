"""The progress' projected total: an ETA read from it (elapsed * (total - done) / done) is its
time model's, worked by hand on a fake clock."""

from __future__ import annotations

import pytest

import affinity.progress as progress_module
from affinity.progress import PACE_STEPS, Progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The progress' clock, set by the test."""
    fake = Clock()
    monkeypatch.setattr(progress_module.time, "perf_counter", fake)
    return fake


def eta(report: tuple[str, float, float], elapsed: float) -> float:
    _, done, total = report
    return elapsed * (total - done) / done


def test_the_eta_is_the_stages_remaining_steps_at_its_own_pace(clock: Clock) -> None:
    seen: list[tuple[str, float, float]] = []
    progress = Progress(3.0, lambda *r: seen.append(r))
    clock.now = 10.0
    progress.update(1.0)  # the all-in-one network: no plans, the plan is reported
    assert seen[-1][2] == 3.0
    progress.unit_steps = 10
    progress.enter("stack", [10, 10])  # two networks of 10 steps: 2 runs, the plan's rest
    assert seen[-1] == ("stack", 1.0, 3.0)  # before its first step the pace is not known
    for step in range(1, PACE_STEPS):  # its first steps carry the setup: the total holds
        clock.now = 10.0 + step
        progress.step(2)
        progress.update(1.0 + 0.2 * step)
        assert seen[-1][2] == 3.0
    clock.now = 13.0
    progress.step(2)
    progress.update(1.6)
    # 0.5 s a network-step; both live, each expected to stop halfway from step 3 to 10: 2 x 3.5
    assert eta(seen[-1], 13.0) == pytest.approx(7 * 0.5)
    clock.now = 14.0
    progress.step(1)  # one stopped at step 4: half stopped in 4 steps, all by step 8
    progress.update(1.7)
    assert eta(seen[-1], 14.0) == pytest.approx((8 - 4) / 2 * (4.0 / 7))
    held = seen[-1][2]
    progress.enter("measure")  # no plans: the last projection holds
    assert seen[-1][2] == pytest.approx(held)
    progress.total = 3.5  # a longer plan: the work left grows at the ratio seen
    progress.update(1.7)
    assert seen[-1][2] == pytest.approx(1.7 + (held - 1.7) / (3.0 - 1.7) * (3.5 - 1.7))
    progress.finish()
    assert seen[-1] == ("done", 3.5, 3.5)


def test_a_new_chunk_of_the_stage_drops_the_finished_ones_plans(clock: Clock) -> None:
    seen: list[tuple[str, float, float]] = []
    progress = Progress(4.0, lambda *r: seen.append(r))
    progress.unit_steps = 10
    clock.now = 1.0
    progress.update(1.0)
    progress.enter("chunks", [10, 10, 10])  # a chunk of one, then a chunk of two
    for step in range(1, PACE_STEPS + 1):
        clock.now = 1.0 + step
        progress.step(1)
        progress.update(1.0 + 0.1 * step)
    # the live one expects 3.5 more steps, the two not started 5 each, at 1 s a step
    assert eta(seen[-1], 4.0) == pytest.approx(3.5 + 10)
    for step in range(1, PACE_STEPS + 1):
        clock.now = 4.0 + step
        progress.step(2)  # more live than before: the second chunk began
        progress.update(1.3 + 0.2 * step)
    # its two expect 3.5 more each; the pace: 6 s over 9 network-steps
    assert eta(seen[-1], 7.0) == pytest.approx(7 * 6 / 9)
