"""The plan: a budget counted in work, never in seconds; no network cut short for it."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import numpy as np
import pytest

import affinity
from affinity.analysis import network_rows
from affinity.plan import Ledger
from affinity.taskset import InvalidTaskSet, parse_taskset
from tests.test_planner_properties import check_budget


def ledger_of(rows: dict[tuple[int, ...], int], budget: float = 20, batch: int = 10) -> Ledger:
    return Ledger(budget, batch, lambda groups: [rows[g] for g in groups], (0, 1, 2))


ROWS = {(0,): 100, (1,): 50, (2,): 100, (0, 1): 100, (0, 2): 100, (1, 2): 100,
        (0, 1, 2): 100}


def test_a_network_costs_its_steps_over_the_all_in_one_networks():
    """The all-in-one network trained 20 epochs of 10 steps (the unit: 200 steps). Before
    anything else trained, a network is planned at the unit's epochs over its own rows; once
    its tasks' single-task networks trained, at the mean of their epochs."""
    ledger = ledger_of(ROWS)
    assert ledger.estimate([(1,)]) == pytest.approx(0.5)  # before the unit: by rows alone
    ledger.set_unit(steps=200, epochs=20)
    ledger.add("all-in-one network", 0, [(0, 1, 2)], [20], [200], seconds=3.0)
    assert ledger.spent == 1.0 and ledger.remaining == 19.0
    assert ledger.estimate([(0,), (1,)]) == pytest.approx((20 * 10 + 20 * 5) / 200)
    ledger.add("singles", 0, [(0,), (1,), (2,)], [10, 30, 20], [100, 150, 200], seconds=99.0)
    assert ledger.spent == pytest.approx(1 + 450 / 200)  # the seconds count for nothing
    assert ledger.estimate([(0, 1)]) == pytest.approx(20 * 10 / 200)  # mean of 10 and 30
    assert ledger.estimate([(1,)]) == pytest.approx(30 * 5 / 200)  # as on its last seed
    assert ledger.remaining == pytest.approx(16.75)  # (0, 2): 15 epochs of 10 steps, 0.75
    assert ledger.affords([(0, 1)], then=[(0, 2)] * 21) and \
        not ledger.affords([(0, 1)], then=[(0, 2)] * 22)
    cost = ledger.cost()
    assert cost["training_runs"] == pytest.approx(3.25) and cost["network_steps"] == 650
    assert cost["stages"][1]["planned_training_runs"] == pytest.approx(
        (20 * 10 + 20 * 5 + 20 * 10) / 200)
    assert cost["stages"][1]["training_runs"] == pytest.approx(2.25)


def test_a_network_weighs_the_rows_it_trains_on():
    """a is labelled on the first half of the rows, b on the second, c on all of them."""
    ts = parse_taskset({"data": {"builtin": "digits"},
                        "tasks": [{"name": t, "type": "regression"} for t in "abc"]})
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    half = np.arange(40) < 20
    targets = {"a": np.where(half, y, np.nan), "b": np.where(half, np.nan, y), "c": y}
    data = affinity.tensors(ts, (x, targets), (x[18:22], {k: v[18:22] for k, v in targets.items()}))
    rows = network_rows(data)
    assert rows([(0,), (1,), (0, 1), (2,), (0, 2)]) == [20, 20, 40, 40, 40]


def test_a_stage_past_its_deadline_stops_after_every_network_trained_an_epoch(device):
    """budget.max_seconds already passed: each network trains one epoch (its own rows) and
    keeps it; none is left without a score."""
    from affinity.data import load_dataset
    from affinity.probes.subsets import run_subsets

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


def small(**budget) -> dict:
    return {"data": {"builtin": "digits"},
            "tasks": [{"name": f"digit_{d}", "type": "binary"} for d in range(4)],
            "training": {"epochs": 8, "patience": 2}, "probe": {"transfer_steps": 10},
            "budget": budget}


def test_a_budget_too_small_for_two_seeds_of_the_baselines_is_refused_before_training():
    """4 tasks on every row: the probes' seed (all-in-one + 4 singles = 5 runs) and one
    confirmation seed of the dearer baseline (4 runs) and the finalists' allowance (2) need
    at least 11 runs; the message says so, before any network trains."""
    started = time.perf_counter()
    with pytest.raises(InvalidTaskSet, match=re.escape(
            "budget.training_runs: 6 cannot afford two seeds of the baselines and the "
            "finalists; this task set needs at least 11")):
        affinity.analyze(parse_taskset(small(training_runs=6)), device="cpu")
    assert time.perf_counter() - started < 30  # refused before training: no epoch ran


def test_when_short_the_baselines_alone_are_compared_and_the_result_says_so(device):
    result = affinity.analyze(parse_taskset(small(training_runs=6, when_short="baselines")),
                              device=device)
    assert any("only the two baselines were trained" in w for w in result.meta.warnings)
    stages = [s["stage"] for s in result.meta.cost.stages]
    assert not any("evidence" in s or "race" in s for s in stages)
    assert all(e["kind"] in ("all_in_one", "single_task") for e in result.to_dict()["groupings"])
    assert all(e["best_groups"] is None for e in result.to_dict()["groupings"])
    # no fresh seed fits in 6 runs beside the probes' seed: the baselines are compared there,
    # and nothing is planned past the budget
    assert result.verification.selection_seeds == [0]
    assert not result.verification.confirmation_seeds
    check_budget(result.meta.cost.model_dump())
    # no pair trained: the pairwise matrix holds no measurement and does not drive
    assert result.meta.driving_measure == "lookahead"
    assert any(w.startswith("grouping.measure: the budget trained no pair") for w in
               result.meta.warnings)


def test_no_network_is_cut_short_and_intervals_come_from_fresh_seeds(device):
    result = affinity.analyze(parse_taskset(small(training_runs=14)), device=device)
    assert not any(s.get("cut") for s in result.meta.cost.stages)
    ver = result.to_dict()["verification"]
    assert ver["selection_seeds"] == [0] or 0 in ver["selection_seeds"]
    assert not set(ver["selection_seeds"]) & set(ver["confirmation_seeds"])
    for e in result.to_dict()["groupings"]:
        assert set(e["confirmation_seeds"]) <= set(ver["confirmation_seeds"])
        assert e["interval"] is None or e["confirmation_seeds"]  # from fresh seeds only
    # what was spent is what the stages' network-steps say, whatever their seconds
    cost = result.meta.cost.model_dump()
    assert cost["training_runs"] == pytest.approx(
        sum(s["network_steps"] for s in cost["stages"]) / cost["unit_steps"], abs=1e-3)


HOG = "import time\nend = time.time() + 120\nwhile time.time() < end: pass\n"


def test_the_same_job_under_load_and_alone_gives_the_same_answer(tmp_path):
    """The plan depends on counted work, not on timings: the same job beside two processes
    that keep every core busy gives the same groupings, verdict, auxiliary choices and cost
    as alone."""
    ts = parse_taskset(small(training_runs=14))
    alone = affinity.analyze(ts, device="cpu")
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(2)]
    try:
        loaded = affinity.analyze(ts, device="cpu")
    finally:
        for h in hogs:
            h.kill()
    assert loaded.groupings == alone.groupings
    assert loaded.verdict == alone.verdict
    assert loaded.verification.auxiliary == alone.verification.auxiliary
    assert loaded.meta.cost.network_steps == alone.meta.cost.network_steps


def test_a_default_budget_short_of_two_seeds_is_raised_not_refused(device):
    """10 tasks on every row with three k: the default (20 runs) is short of the probes' seed
    and a fresh seed of the finalists once the first seed's single-task networks are the
    better baseline (11 runs spent, a seed of 10 singles and 2 finalists' networks, with the
    margin), so the analysis raises it and confirms on a fresh seed, without refusing."""
    doc = small()
    doc["tasks"] = [{"name": f"digit_{d}", "type": "binary"} for d in range(10)]
    result = affinity.analyze(parse_taskset(doc), device=device)
    cost = result.meta.cost.model_dump()
    assert cost["budget"] > 20
    check_budget(cost)
    assert result.verification.confirmation_seeds == [500]


def test_every_k_gets_a_finalist_and_an_interval_when_nothing_was_raced(device):
    """At the least budget (11 runs: the probes' seed, 5 runs, and a fresh seed) the race
    trains nothing beyond the probes' seed: for every k the best-ranked candidate the fresh
    seed affords is confirmed, chosen by prediction alone; its networks never trained before
    have no spread of their own, so a second fresh seed is what an interval needs. With 22
    runs the probes' seed measures pairs, the finalists are chosen among what it measured,
    and one fresh seed gives every k an interval (the networks' spread, pooled)."""
    short = affinity.analyze(parse_taskset(small(training_runs=11)), device=device)
    assert not any(s["stage"].startswith("race") for s in short.meta.cost.stages)
    compared = [e for e in short.to_dict()["groupings"] if e["k"] != 1]
    assert compared and all(e["best_groups"] for e in compared)
    assert all(e["confirmation_seeds"] == [500] for e in compared)
    check_budget(short.meta.cost.model_dump())
    roomy = affinity.analyze(parse_taskset(small(training_runs=22)), device=device)
    compared = [e for e in roomy.to_dict()["groupings"] if e["k"] != 1]
    assert compared and all(e["interval"] is not None and e["confirmation_seeds"] == [500]
                            for e in compared)
