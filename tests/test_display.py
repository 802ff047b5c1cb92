"""Progress in a log: whole lines, a line per stage and at most one every 10 s, no frames."""

from __future__ import annotations

import io

import affinity.display as display_module
from affinity.display import ProgressDisplay


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_lines_per_stage_and_every_ten_seconds(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(display_module.time, "monotonic", clock)
    out = io.StringIO()
    with ProgressDisplay("run", stream=out) as shown:
        shown.show("probes", 1, 20)  # within the first second: nothing (a refusal stays bare)
        clock.now = 2.0
        shown.show("probes", 2, 20)  # after a second: the stage's first line
        clock.now = 5.0
        shown.show("probes", 3, 20)  # 3 s later, same stage: no line
        clock.now = 12.5
        shown.show("probes", 5, 20)  # 10.5 s later: a line
        clock.now = 13.0
        shown.show("race", 10, 20)  # a new stage: a line at once, no ETA (its pace unknown)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and out.getvalue().endswith("\n")
    assert lines == ["probes:  10% (00:02 elapsed, about 00:18 left)",
                     "probes:  25% (00:12 elapsed, about 00:38 left)",
                     "race:  50% (00:13 elapsed)"]


def test_quiet_shows_nothing():
    out = io.StringIO()
    with ProgressDisplay("run", enabled=False, stream=out) as shown:
        shown.show("probes", 1, 2)
    assert out.getvalue() == ""
