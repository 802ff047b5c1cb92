"""The planner, the race, the confirmation and the result's entries over generated task sets,
driven by a simulated trainer (``tests/simulated.py``: instant synthetic losses, no torch
training): no crash but the documented refusal, every loss read from a network trained on
the seed it names, every stage planned within the budget, the same answer twice."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from affinity import tensors
from affinity.analysis import analyze
from affinity.plan import Policy
from affinity.result import Result
from affinity.taskset import InvalidTaskSet, TaskSet, parse_taskset
from tests.simulated import SimulatedExecutor

MEASURES = ["grad_cosine", "lookahead", "pairwise"]  # those a simulated run can give


@st.composite
def jobs(draw: st.DrawFn) -> dict:
    n = draw(st.integers(2, 12))
    ks = draw(st.lists(st.integers(1, n), min_size=1, max_size=3, unique=True))
    return {"n": n, "ks": sorted(ks),
            # small budgets often: the planner's edge cases lie near the least it needs
            "runs": draw(st.one_of(st.none(), st.integers(1, 60), st.integers(1, 500))),
            "own_rows": draw(st.booleans()),
            "recipe": draw(st.one_of(st.none(), st.sampled_from([
                {"epochs": 8, "batch_size": 64}, {"epochs": 30, "batch_size": 200}]))),
            "world": draw(st.integers(0, 10_000))}


def build(job: dict) -> tuple[TaskSet, object]:
    """The job's task set and generated data (binary and regression tasks in turn; shared
    rows, or each task on rows of its own of a size of its own)."""
    doc: dict = {"data": {"in_memory": True}, "measures": MEASURES,
                 "tasks": [{"name": f"t{i}", "type": "binary" if i % 2 else "regression"}
                           for i in range(job["n"])],
                 "grouping": {"budgets": job["ks"]}}
    if job["runs"] is not None:
        doc["budget"] = {"training_runs": job["runs"]}
    if job["recipe"]:
        doc["training"] = job["recipe"]
    taskset = parse_taskset(doc)
    rng = np.random.default_rng(job["world"])

    def labels(i: int, m: int) -> np.ndarray:
        return (rng.random(m) < 0.5).astype(float) if i % 2 else rng.normal(size=m)

    if job["own_rows"]:
        sizes = rng.integers(60, 300, job["n"])
        train: object = {t: (rng.normal(size=(m, 3)).astype("float32"), labels(i, m))
                         for i, (t, m) in enumerate(zip(taskset.task_names, sizes, strict=True))}
    else:
        train = (rng.normal(size=(300, 3)).astype("float32"),
                 {t: labels(i, 300) for i, t in enumerate(taskset.task_names)})
    return taskset, tensors(taskset, train)


def run(job: dict) -> tuple[Result | None, SimulatedExecutor, str]:
    taskset, data = build(job)
    sim = SimulatedExecutor(job["n"], job["world"])
    try:
        return analyze(taskset, data=data, device="cpu", executor=sim), sim, ""
    except InvalidTaskSet as refusal:
        return None, sim, str(refusal)


def trained_loss(sim: SimulatedExecutor, group: tuple[int, ...], seed: int, task: int) -> float:
    assert (group, seed) in sim.trained, f"{group} read on seed {seed}, never trained there"
    return float(sim.trained[group, seed][task])


def check_entry(entry: dict, tasks: list[str], sim: SimulatedExecutor) -> None:
    """Each measured loss of a groupings entry is the mean, over the seeds it names, of the
    losses of networks trained on those seeds."""
    index = {t: i for i, t in enumerate(tasks)}
    everyone = tuple(range(len(tasks)))
    groups = [tuple(sorted(index[t] for t in g)) for g in entry["groups"]]
    if entry["evidence"] == "predicted":  # the one-run level; checked: on one fresh seed
        serving = {groups[i] for i in entry["served_by"].values()}
        assert {t for g in serving for t in g} == set(range(len(tasks)))
        for s in entry.get("confirmation_seeds", []):  # what it recommends trained there
            if entry["kind"] != "single_task":
                assert all((g, s) in sim.trained for g in serving | {everyone}), (entry["k"], s)
        return
    seeds = entry["measured_seeds"]
    for name, m in entry["measured"].items():
        t = index[name]
        served = groups[entry["served_by"][name]]
        for field, group, on in (("loss", served, seeds["groups"]),
                                 ("single_loss", (t,), seeds["single_task"]),
                                 ("all_in_one_loss", everyone, seeds["all_in_one"])):
            assert on, f"k={entry['k']}: {field} of {name} from no seed"
            expected = np.mean([trained_loss(sim, group, s, t) for s in on])
            assert m[field] == pytest.approx(expected, abs=2e-6), (entry["k"], name, field)
    # where the best k groups are recommended, the claim's fresh seeds trained each of their
    # serving groups that the baseline lacks (a network both share adds nothing to the
    # comparison, and one that serves no task nothing either: neither need train again)
    base = [everyone] if entry["baseline"] == "all_in_one" else [(t,) for t in everyone]
    serving = {groups[i] for i in entry["served_by"].values()}
    for s in entry["confirmation_seeds"] if entry["groups"] == entry["best_groups"] else []:
        assert all((g, s) in sim.trained for g in serving if g not in base), (entry["k"], s)


def check_auxiliary(choice: dict, primary: int, tasks: list[str],
                    sim: SimulatedExecutor) -> None:
    """The primary's comparison read its best set's network and the primary alone on the
    seeds it names; the set never holds the primary twice."""
    partners = tuple(sorted([primary, *(tasks.index(t) for t in choice["best_measured"])]))
    assert len(set(partners)) == len(partners)
    for s in choice["confirmation_seeds"]:
        trained_loss(sim, partners, s, primary)
        trained_loss(sim, (primary,), s, primary)
    if choice["loss"] is not None:
        expected = np.mean([sim.trained[partners, s][primary]
                            for s in choice["confirmation_seeds"]])
        assert choice["loss"] == pytest.approx(expected, abs=2e-6)


def check_budget(cost: dict) -> None:
    """Each stage of ``meta.cost`` started only where its planned cost fitted in what the
    budget left (a network that trains longer than planned is paid in full, and says so)."""
    spent = 0.0
    for stage in cost["stages"]:
        planned = stage.get("planned_training_runs", stage.get("training_runs", 0.0))
        assert spent + planned <= cost["budget"] + 1e-3, (stage, spent, cost["budget"])
        spent += stage["training_runs"]
    assert cost["training_runs"] == pytest.approx(spent, abs=0.01)


def stable(result: Result) -> str:
    """The result without its wall times."""
    doc = json.loads(json.dumps(result.to_dict(), default=str))
    cost = doc["meta"].pop("cost")
    doc["meta"].pop("seconds", None)
    doc["stages"] = [{k: v for k, v in s.items() if k != "seconds"} for s in cost["stages"]]
    return json.dumps(doc, sort_keys=True, default=str)


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(jobs())
def test_planner_over_generated_task_sets(job: dict) -> None:
    note(repr(job))
    result, sim, refusal = run(job)
    event("refused" if result is None else f"ran, T={job['n']}")
    if result is None:  # the documented refusal: too small a budget, named with what it needs
        assert job["runs"] is not None
        assert refusal.startswith(f"budget.training_runs: {job['runs']:g} cannot afford")
        assert "needs at least" in refusal
        return
    doc = result.to_dict()
    assert len(doc["groupings"]) == len(job["ks"])
    assert [e["k"] for e in doc["groupings"]] == job["ks"]
    for entry in doc["groupings"]:
        check_entry(entry, result.tasks, sim)
        assert {t for g in entry["groups"] for t in g} == set(result.tasks)
    for p, choice in doc["verification"]["auxiliary"].items():
        check_auxiliary(choice, result.tasks.index(p), result.tasks, sim)
    check_budget(doc["meta"]["cost"])
    again, _, _ = run(job)
    assert again is not None and stable(again) == stable(result)


def test_the_task_sets_seed_is_the_base_of_every_seed():
    """seed: 7 moves the probes' seed to 7, the race's after it and the fresh ones to 507
    and on; the simulated networks trained are exactly those seeds'."""
    job = {"n": 4, "ks": [2], "runs": 60, "own_rows": False, "recipe": None, "world": 3}
    taskset, data = build(job)
    moved = taskset.model_copy(update={"seed": 7})
    sim = SimulatedExecutor(4, 3)
    result = analyze(moved, data=data, device="cpu", executor=sim)
    ver = result.to_dict()["verification"]
    assert ver["selection_seeds"][0] == 7 and all(7 <= s < 7 + 8 for s in ver["selection_seeds"])
    assert ver["confirmation_seeds"] and all(s >= 507 for s in ver["confirmation_seeds"])
    trained = {s for _, s in sim.trained}
    assert trained <= set(ver["selection_seeds"]) | set(ver["confirmation_seeds"]) | \
        set(range(7, 15))
    assert result.meta.taskset["seed"] == 7


def test_the_policy_is_passed_in_and_sets_the_default_budget():
    """``analyze(policy=...)``: the default budget is the policy's counted operations (a
    tenth of them, a tenth of the training runs granted); a policy out of range is refused,
    naming the field."""
    job = {"n": 5, "ks": [2], "runs": None, "own_rows": False, "recipe": None, "world": 1}
    taskset, data = build(job)
    costs = []
    for flops in (4e12, 4e11):
        result = analyze(taskset, data=data, device="cpu", executor=SimulatedExecutor(5, 1),
                         policy=Policy(default_flops=flops))
        costs.append(result.to_dict()["meta"]["cost"])
    assert costs[0]["budget_flops"] == pytest.approx(4e12, rel=0.01)
    assert costs[1]["budget_flops"] == pytest.approx(4e11, rel=0.01)
    assert costs[1]["budget"] == pytest.approx(costs[0]["budget"] / 10, rel=0.01)
    with pytest.raises(ValueError, match=r"Policy.evidence_share must be <= 1; got 1.5"):
        Policy(evidence_share=1.5)


def test_a_budget_short_of_the_measured_level_gets_the_checked_level():
    """An explicit budget below the measured level's need but above the checked level's: the
    all-in-one network on the probes' seed predicts every k's groups; one fresh seed trains
    the all-in-one network, those groups and a sample of the tasks alone; each entry's
    comparison is what those networks measured. Below the checked level, the refusal names
    both levels' needs."""
    job = {"n": 6, "ks": [1, 2, 3], "runs": 14, "own_rows": False, "recipe": None, "world": 4}
    result, sim, _ = run(job)
    assert result is not None
    fresh = 500
    assert {s for _, s in sim.trained} == {0, fresh}
    assert [g for g, s in sim.trained if s == 0] == [tuple(range(6))]
    alone = [g[0] for g, s in sim.trained if s == fresh and len(g) == 1]
    assert len(alone) >= 3
    everyone = tuple(range(6))
    for e in result.groupings:
        assert e.evidence == "predicted" and e.confirmation_seeds == [fresh]
        if e.k == 1 and e.baseline == "all_in_one":  # the baseline itself: nothing to compare
            assert e.improvement is None and e.interval is None and e.kind == "all_in_one"
            continue
        assert e.interval is not None and e.improvement is not None
        assert e.interval[0] <= e.improvement <= e.interval[1]
        best = [tuple(sorted(result.tasks.index(t) for t in g)) for g in e.best_groups or []]
        predicted = {t: best.index(tuple(sorted(result.tasks.index(u) for u in g)))
                     for t, g in zip(result.tasks, [e.groups[e.served_by[t]]
                                                    for t in result.tasks], strict=True)} \
            if e.kind == "groups" else None
        if predicted is None:  # a baseline recommended: its groups and serving are its own
            assert e.served_by == {t: 0 if e.kind == "all_in_one" else i
                                   for i, t in enumerate(result.tasks)}
            continue
        mine = sum(sim.trained[best[predicted[t]], fresh][i] for i, t in enumerate(result.tasks))
        if e.baseline == "all_in_one":
            joint = np.nansum(sim.trained[everyone, fresh])
            assert e.improvement == pytest.approx((joint - mine) / joint, abs=1e-5)
        assert e.kind == ("groups" if e.improvement > 0 else e.baseline)
    assert any(e.kind == "groups" for e in result.groupings)  # the comparison above was read
    assert "checked on one fresh seed" in result.verdict
    assert ("every task alone" if len(alone) == 6 else f"{len(alone)} of 6 tasks alone") \
        in result.verdict
    check_budget(result.to_dict()["meta"]["cost"])
    _, _, refusal = run({**job, "runs": 8})
    checked = int(refusal.split("or at least ")[1].split(" ")[0])
    assert 8 < checked <= 14
    at_least, _, _ = run({**job, "runs": checked})
    assert at_least is not None and at_least.groupings[0].confirmation_seeds == [fresh]


def test_an_unverified_analysis_names_its_groups_predicted_and_its_pairs_unmeasured():
    """``verify: false``: every entry is chosen by prediction alone and says so; the pairs
    inside its groups that no network trained are listed."""
    job = {"n": 5, "ks": [2, 3], "runs": 40, "own_rows": False, "recipe": None, "world": 2}
    taskset, data = build(job)
    taskset = taskset.model_copy(update={"grouping": taskset.grouping.model_copy(
        update={"verify": False})})
    sim = SimulatedExecutor(5, 2)
    result = analyze(taskset, data=data, device="cpu", executor=sim)
    trained = {g for g, _ in sim.trained}
    for e in result.groupings:
        assert e.evidence == "predicted" and e.baseline is None and e.predicted_gain
        inside = sorted({tuple(sorted(result.tasks.index(t) for t in (a, b)))
                         for g in e.groups for i, a in enumerate(g) for b in g[i + 1:]})
        assert [[result.tasks[a], result.tasks[b]] for a, b in inside
                if (a, b) not in trained] == e.unmeasured_pairs
    assert result.verdict.startswith("not measured")


def test_a_network_too_dear_for_the_default_budget_gets_the_one_run_level():
    """At the default budget, counted compute short of the measured level (a tiny
    ``default_flops`` stands in for a dear network): only the all-in-one network trains;
    every k's groups are predicted from its lookahead, named as predicted; the result says
    what measuring them would cost. An explicit budget gets the measured level."""
    job = {"n": 5, "ks": [2, 3], "runs": None, "own_rows": False, "recipe": None, "world": 4}
    taskset, data = build(job)
    sim = SimulatedExecutor(5, 4)
    result = analyze(taskset, data=data, device="cpu", executor=sim,
                     policy=Policy(default_flops=1e6))
    assert list(sim.trained) == [((0, 1, 2, 3, 4), 0)]
    assert set(result.affinity) == {"lookahead", "grad_cosine"}
    assert [e.k for e in result.groupings] == [2, 3]
    assert all(e.evidence == "predicted" and e.baseline is None for e in result.groupings)
    need = result.meta.next_level
    assert need is not None and need.training_runs > result.meta.cost.budget
    assert result.verdict.startswith("predicted from one run, not measured: k = ")
    assert f"needs budget.training_runs: {need.training_runs}," in result.verdict
    assert any(w.startswith("budget: the network is too dear") for w in result.meta.warnings)
    assert result.meta.cost.training_runs == pytest.approx(1.0)
    assert result.meta.cost.budget == pytest.approx(1.0)  # the counted default, at least the run
    (said,) = [w for w in result.meta.warnings if w.startswith("budget: the network")]
    counted = float(said.split("(", 1)[1].split(" training runs")[0])
    assert 0 < counted < 1
    explicit = taskset.model_copy(update={"budget": taskset.budget.model_copy(
        update={"training_runs": float(need.training_runs)})})
    measured = analyze(explicit, data=data, device="cpu", executor=SimulatedExecutor(5, 4),
                       policy=Policy(default_flops=1e6))
    assert measured.meta.next_level is None
    assert all(e.evidence == "measured" for e in measured.groupings)
    assert measured.verification is not None and measured.verification.confirmation_seeds
