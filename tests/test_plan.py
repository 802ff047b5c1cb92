"""The ledger: the unit, what was spent, and the stage-cost model the race plans with."""

from __future__ import annotations

import re

import pytest

from affinity.plan import STACK_SPEEDUP_GUESS, Ledger


def stage(ledger: Ledger, networks: int, steps: int, network_steps: int, seconds: float,
          weights: list[float] | None = None, member_steps: list[int] | None = None) -> None:
    """Record a stage of known cost without waiting for it (``weights``, ``member_steps``:
    each network's weight and steps)."""
    with ledger.stage(f"{networks} networks", networks, 0) as record:
        record.update(steps=steps, network_steps=network_steps)
        if weights:
            record.update(_weights=weights, _member_steps=member_steps)
    ledger.seconds += seconds - ledger.stages[-1]["seconds"]
    ledger.stages[-1]["seconds"] = seconds


def test_costs_are_counted_in_training_runs_of_the_unit_network():
    ledger = Ledger(budget=20)
    assert ledger.estimate([1.0] * 10) == 0.0 and ledger.spent == 0.0  # no unit yet
    ledger.set_unit(seconds=2.0, steps=100)
    one = 2.0 / 100
    # before any stack: one more network costs a third of a network alone
    assert ledger.estimate([1.0]) == pytest.approx(1.0)
    assert ledger.estimate([1.0] * 4) == pytest.approx(1 + 3 / STACK_SPEEDUP_GUESS)
    # a step costs alpha + beta * networks: alpha = 0.01, beta = 0.01 seconds (one = 0.02)
    stage(ledger, 30, 100, 3000, 100 * (0.01 + 0.01 * 30))
    assert ledger.estimate([1.0] * 10) == pytest.approx(100 * (0.01 + 0.01 * 10) / 2.0, rel=1e-6)
    assert ledger.estimate([1.0]) == pytest.approx(100 * one / 2.0, rel=1e-6)
    assert ledger.spent == pytest.approx(31 / 2.0)
    seven = [1.0] * 7
    assert ledger.affords(seven) and not ledger.affords(seven, share=0.5)  # 4 runs of 4.5 left
    cost = ledger.cost()
    assert cost["training_runs"] == pytest.approx(15.5) and cost["budget"] == 20
    assert cost["network_trainings"] == pytest.approx(30.0)
    assert cost["stages"][0]["training_runs"] == pytest.approx(15.5)


def test_a_timed_step_calibrates_how_many_networks_fit():
    """One network's step 0.01 s (the unit: 100 steps in 1 s); a stack of 10, timed, 0.03 s:
    alpha = 0.07/9, beta = 0.02/9. With 10 runs left and half of them to spend (a step may
    cost 0.05 s), a stage may hold (0.05 - alpha) / beta = 19 networks."""
    ledger = Ledger(budget=11)
    ledger.set_unit(seconds=1.0, steps=100)
    ledger.seconds = 1.0  # the all-in-one network
    ledger.calibrate(10, 0.03)
    assert ledger.spent == pytest.approx(1.0)  # a timing, not a cost
    assert ledger.estimate([1.0] * 10) == pytest.approx(3.0)
    assert ledger.most_networks(0.5) == 19
    assert ledger.affords([1.0] * 19, 0.5) and not ledger.affords([1.0] * 20, 0.5)
    assert ledger.cost()["stages"][0]["training_runs"] == 0.0  # listed, not counted


def test_a_stack_is_planned_to_run_as_long_as_the_stacks_before_it():
    """A stack trains until its slowest network stops, each network until it stops: when the
    stacks so far ran 2 and 3 times the unit's steps and their networks 1 and 0.5 times on
    average, the next is planned at 2.5 and 0.75 times; a stage cut short by the budget says
    nothing about how long networks train and is left out."""
    ledger = Ledger(budget=100)
    ledger.set_unit(seconds=0.6, steps=100)  # a step: alpha + beta = 0.005 + 0.001 seconds
    stage(ledger, 10, 200, 1000, 200 * 0.005 + 1000 * 0.001)
    stage(ledger, 20, 300, 1000, 300 * 0.005 + 1000 * 0.001)
    expected = (250 * 0.005 + 10 * 75 * 0.001) / 0.6
    assert ledger.estimate([1.0] * 10) == pytest.approx(expected, rel=1e-6)
    seconds = 0.5 * ledger.remaining * 0.6
    assert ledger.most_networks(0.5) == int((seconds - 250 * 0.005) / (75 * 0.001) + 1e-9)
    stage(ledger, 30, 50, 1500, 50 * 0.005 + 1500 * 0.001)
    ledger.stages[-1]["cut"] = "30 of 30"
    assert ledger.estimate([1.0] * 10) == pytest.approx(expected, rel=1e-6)


def test_networks_on_rows_of_their_own_are_planned_by_their_weight():
    """8 networks on a quarter of the rows each (weight 0.25, 2 in all) ran 50 stack steps and
    200 network steps (the unit: 100): in proportion to their weight, so 2 stack steps per
    weight of the widest, 1 network step per unit of weight. 8 networks on half the rows are
    planned at 100 and 400 steps; 8 on every row at 200 and 800. The cost lists their summed
    and largest weight, not each network's."""
    ledger = Ledger(budget=100)
    ledger.set_unit(seconds=0.6, steps=100)  # a step: alpha + beta = 0.005 + 0.001 seconds
    stage(ledger, 8, 50, 200, 50 * 0.005 + 200 * 0.001, [0.25] * 8, [25] * 8)
    assert ledger.estimate([0.5] * 8) == pytest.approx((100 * 0.005 + 400 * 0.001) / 0.6)
    assert ledger.estimate([1.0] * 8) == pytest.approx((200 * 0.005 + 800 * 0.001) / 0.6)
    seconds = 0.5 * ledger.remaining * 0.6
    assert ledger.most_networks(0.5, [0.5] * 8) == int(
        (seconds - 100 * 0.005) / (50 * 0.001) + 1e-9)
    listed = ledger.cost()["stages"][0]
    assert listed["work"] == 2.0 and listed["widest"] == 0.25 and "_weights" not in listed


def test_steps_grow_with_weight_by_the_power_the_networks_showed():
    """Networks on a sixteenth of the rows trained a quarter of the unit's steps (25 of 100),
    those on a quarter half of them: steps grow as the square root of the weight (a size of
    0.25 and 0.5). A stack of them ran 50 steps, its networks 250: one unit's steps per size
    of the largest and per unit of size. A stack of 8 on a quarter of the rows is planned at
    0.5 * 100 stack steps and 8 * 0.5 * 100 network steps, not in proportion to their rows
    (which would plan it half as long)."""
    ledger = Ledger(budget=100)
    ledger.set_unit(seconds=0.6, steps=100)
    stage(ledger, 6, 50, 250, 50 * 0.005 + 250 * 0.001, [1 / 16] * 2 + [0.25] * 4,
          [25, 25, 50, 50, 50, 50])
    assert ledger._exponent() == pytest.approx(0.5)
    assert ledger.estimate([0.25] * 8) == pytest.approx((50 * 0.005 + 400 * 0.001) / 0.6)


def test_a_network_weighs_the_share_of_the_rows_it_trains_on():
    """a is labelled on the first half of the rows, b on the second, c on all of them."""
    import numpy as np

    import affinity
    from affinity.analysis import network_weights
    from affinity.taskset import parse_taskset

    ts = parse_taskset({"data": {"builtin": "digits"},
                        "tasks": [{"name": t, "type": "regression"} for t in "abc"]})
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    half = np.arange(40) < 20
    targets = {"a": np.where(half, y, np.nan), "b": np.where(half, np.nan, y), "c": y}
    data = affinity.tensors(ts, (x, targets), (x[18:22], {k: v[18:22] for k, v in targets.items()}))
    weigh = network_weights(data)
    assert weigh([(0,), (1,), (0, 1), (2,), (0, 2)]) == [0.5, 0.5, 1.0, 1.0, 1.0]


def test_time_between_stages_counts_against_the_budget():
    """Wall time since the start beyond the stages' own (measures, selection) is spent too,
    up to a quarter of the budget; the reported training runs stay the stages'."""
    import time

    ledger = Ledger(budget=20, started=time.perf_counter() - 5.0)
    ledger.set_unit(seconds=1.0, steps=100)
    stage(ledger, 1, 100, 100, 1.0)
    assert ledger.spent == pytest.approx(1.0, abs=1e-3)
    assert ledger.remaining == pytest.approx(15.0, abs=0.5)
    assert not ledger.affords([1.0], share=0.06)  # 0.9 of 15 runs left (19 by the stages alone)
    assert ledger.cost()["training_runs"] == pytest.approx(1.0, abs=1e-3)
    ledger.started -= 45.0  # 49 s between stages: counted up to a quarter of the budget
    assert ledger.remaining == pytest.approx(20 - 1 - 5, abs=1e-3)


def test_a_stage_past_its_deadline_stops_after_every_network_trained_an_epoch(device):
    """A deadline already passed: each network trains one epoch (its own rows) and keeps it;
    none is left without a score."""
    import time

    import numpy as np

    from affinity.data import load_dataset
    from affinity.probes.subsets import run_subsets
    from affinity.taskset import parse_taskset

    ts = parse_taskset({"data": {"builtin": "digits"},
                        "tasks": [{"name": f"digit_{d}", "type": "binary"} for d in range(3)],
                        "training": {"epochs": 50, "patience": 50}})
    data = load_dataset(ts).to(device)
    members = [(0,), (1,), (0, 1), (0, 1, 2)]
    cut = run_subsets(ts, data, members, 0, device, deadline=time.time() - 1)
    assert cut.cut == 4 and (cut.epochs == 1).all()
    assert np.isfinite(cut.val_loss[[0, 1, 2, 3, 3, 3], [0, 1, 0, 0, 1, 2]]).all()
    full = run_subsets(ts, data, members, 0, device, max_steps=None,
                       deadline=time.time() + 3600)
    assert full.cut == 0 and (full.epochs > 1).all()


def test_a_budget_too_small_for_its_networks_says_so_and_keeps_near_it(device):
    import affinity
    from affinity.taskset import parse_taskset

    ts = parse_taskset({"data": {"builtin": "digits"},
                        "tasks": [{"name": f"digit_{d}", "type": "binary"} for d in range(4)],
                        "training": {"epochs": 200, "patience": 20, "min_delta": 0},
                        "budget": {"training_runs": 2}})
    result = affinity.analyze(ts, device=device)
    assert any(w.startswith("budget.training_runs: the budget ran out while networks were "
                            "still training (") for w in result.meta["warnings"])
    cut = [s for s in result.meta["cost"]["stages"] if s.get("cut")]
    assert cut and cut[0]["stage"].endswith("subset networks (seed 1/1)")
    # the cut stage ends after the epoch under way: about one epoch past its share
    assert result.meta["cost"]["training_runs"] < 3.5
    # no race seed beyond the probes': the warning says what budget would afford one
    assert result.verification["seeds"] == [0]
    short = [w for w in result.meta["warnings"] if "measured the probes' seed only" in w]
    assert len(short) == 1
    assert int(re.search(r"about (\d+) training runs would afford a second seed",
                         short[0]).group(1)) > 2
