"""The checked level: the one run's predicted groupings, measured on one fresh seed.

Where the measured level does not fit (a default budget short of it, or a
``budget.training_runs`` below its need), but more than the all-in-one run does, one fresh
seed trains the all-in-one network, every k's predicted groups and a sample of the tasks
alone (as many as fit; ``plan_check``). Each k's groups are then compared with both
baselines on that seed (``check_entry``):

- against one network for all: the per-task losses of every task, on both sides;
- against every task alone: each sampled task's difference, scaled up to all tasks, with the
  finite-population correction (a sample of every task has no sampling error).

One seed has no spread of its own: the seed-to-seed spread is pooled from the all-in-one
network, trained on the probes' seed and the fresh one (``pooled_spread``): each task's
relative seed-to-seed standard deviation, one value for all tasks and networks. Networks are
taken as independent across seeds and a network's tasks as moving together (their losses'
errors add up, not in quadrature), so the interval errs wide.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from affinity.plan import Ledger
from affinity.race import Group, Measurements
from affinity.recommend import unmeasured_pairs
from affinity.result_models import GroupingEntry, Kind

MIN_SAMPLE = 3
"""Single-task networks the check needs at least (all tasks where there are fewer)."""


@dataclass(frozen=True)
class Grouping:
    """A k's predicted groups and the group serving each task (its index)."""

    k: int
    groups: tuple[Group, ...]
    served_by: tuple[int, ...]


@dataclass(frozen=True)
class Check:
    """What the fresh seed trains: the all-in-one network, the groupings' serving groups and
    the sampled tasks alone (``networks``, deduplicated); ``sample``: the sampled tasks."""

    networks: list[Group]
    sample: list[int]


def sample_order(n_tasks: int, seed: int) -> list[int]:
    """The order in which tasks enter the single-task sample, drawn by ``seed``."""
    return np.random.default_rng(seed).permutation(n_tasks).tolist()


def plan_check(groupings: Sequence[Grouping], n_tasks: int, seed: int, room: float,
               cost: Callable[[list[Group]], float]) -> Check | None:
    """The largest check whose planned cost (``cost(networks)``, in training runs) fits in
    ``room``: every grouping's groups that serve a task (a group that serves none adds
    nothing to a comparison) and the all-in-one network, then tasks alone in
    ``sample_order`` while they fit; None where fewer than ``MIN_SAMPLE`` fit. ``cost`` is
    the ledger's estimate. A grouping's group of one
    task is that task's network alone, and joins the sample."""
    everyone: Group = tuple(range(n_tasks))
    serving = {grouping.groups[g] for grouping in groupings for g in grouping.served_by}
    networks = [everyone] + sorted(serving - {everyone}, key=lambda g: (len(g), g))
    order = sample_order(n_tasks, seed)
    least = max(0, min(n_tasks, MIN_SAMPLE) - sum(len(g) == 1 for g in networks))
    alone: list[Group] = [(t,) for t in order if (t,) not in networks]
    if cost(networks + alone[:least]) > room + 1e-9:
        return None
    lo, hi = least, len(alone)
    while lo < hi:  # the most tasks alone that fit (the cost grows with each)
        mid = (lo + hi + 1) // 2
        if cost(networks + alone[:mid]) <= room + 1e-9:
            lo = mid
        else:
            hi = mid - 1
    networks += alone[:lo]
    return Check(networks, sorted(t for t in range(n_tasks) if (t,) in networks))


def checked_need(ledger: Ledger, n_tasks: int, budgets: Sequence[int], seed: int) -> float:
    """The least budget of the checked level, planned before anything trains: the all-in-one
    network on two seeds, each k's groups at the all-in-one network's cost each (k = 1 is
    the all-in-one network itself) and the first ``MIN_SAMPLE`` tasks of the sample alone."""
    everyone = ledger.estimate([ledger.everyone])
    groups = sum(k for k in set(budgets) if k > 1)
    first = [(t,) for t in sample_order(n_tasks, seed)[:MIN_SAMPLE]]
    return ledger.spent + (2 + groups) * everyone + ledger.estimate(first)


def pooled_spread(measured: Measurements, everyone: Group, seeds: Sequence[int]) -> float:
    """The relative seed-to-seed standard deviation of a task's loss, pooled over the tasks
    of the all-in-one network trained on ``seeds`` (two or more)."""
    losses = np.stack([measured.loss[everyone, s] for s in seeds])  # (seeds, tasks)
    rel = (losses - losses.mean(0)) / np.maximum(losses.mean(0), 1e-12)
    dof = (len(seeds) - 1) * losses.shape[1]
    return float(math.sqrt((rel ** 2).sum() / max(dof, 1)))


@dataclass(frozen=True)
class SeedComparison:
    """The grouping against a baseline on one fresh seed: the relative drop of the total
    loss, its interval, and the baseline's estimated total loss (``stats.Comparison`` is
    the seed-paired one of the measured level)."""

    baseline: str
    improvement: float
    interval: tuple[float, float]
    baseline_total: float


def _seed_variance(terms: dict[Group, float], spread: float) -> float:
    """Independent networks, each adding ``spread`` times its signed loss sum."""
    return float(sum((spread * v) ** 2 for v in terms.values()))


def against_all_in_one(grouping: Grouping, measured: Measurements, seed: int, spread: float,
                       dof: int, confidence: float = 0.95) -> SeedComparison:
    """The grouping against one network for all tasks, on every task of ``seed``."""
    n = len(grouping.served_by)
    everyone: Group = tuple(range(n))
    joint = measured.loss[everyone, seed]
    mine = np.array([measured.loss[grouping.groups[g], seed][t]
                     for t, g in enumerate(grouping.served_by)])
    terms: dict[Group, float] = {}
    for t, g in enumerate(grouping.served_by):
        terms[grouping.groups[g]] = terms.get(grouping.groups[g], 0.0) + mine[t]
    terms[everyone] = terms.get(everyone, 0.0) - float(joint.sum())
    total = float(joint.sum())
    half = stats.t.ppf((1 + confidence) / 2, dof) * math.sqrt(_seed_variance(terms, spread))
    drop = float(joint.sum() - mine.sum())
    return SeedComparison("all_in_one", drop / total,
                      (float(drop - half) / total, float(drop + half) / total), total)


def against_alone(grouping: Grouping, measured: Measurements, seed: int, sample: Sequence[int],
                  spread: float, dof: int, confidence: float = 0.95) -> SeedComparison:
    """The grouping against every task alone, from the ``sample`` of tasks trained alone on
    ``seed``: the mean difference scaled to all tasks, its sampling variance with the
    finite-population correction plus the pooled seed spread of the networks read."""
    n, m = len(grouping.served_by), len(sample)
    alone = np.array([measured.loss[(t,), seed][t] for t in sample])
    mine = np.array([measured.loss[grouping.groups[grouping.served_by[t]], seed][t]
                     for t in sample])
    d = alone - mine
    scale = n / m
    sampling = scale ** 2 * m * (1 - m / n) * (d.var(ddof=1) if m > 1 else 0.0)
    terms: dict[Group, float] = {}
    for i, t in enumerate(sample):
        g = grouping.groups[grouping.served_by[t]]
        terms[g] = terms.get(g, 0.0) + scale * mine[i]
        terms[(t,)] = terms.get((t,), 0.0) - scale * alone[i]
    total = scale * float(alone.sum())
    half = stats.t.ppf((1 + confidence) / 2, min(dof, m - 1) if m < n else dof) * \
        math.sqrt(sampling + _seed_variance(terms, spread))
    drop = scale * float(d.sum())
    return SeedComparison("single_task", drop / total,
                      (float(drop - half) / total, float(drop + half) / total), total)


def check_entry(tasks: list[str], predicted: GroupingEntry, grouping: Grouping,
                measured: Measurements, seed: int, sample: Sequence[int], spread: float,
                dof: int) -> GroupingEntry:
    """A k's entry at the checked level: the predicted groups against the better baseline
    (the lower total loss on ``seed``, every task alone estimated from ``sample``); the
    decision is the groups where they measured lower than it, else that baseline."""
    joint = against_all_in_one(grouping, measured, seed, spread, dof)
    alone = against_alone(grouping, measured, seed, sample, spread, dof)
    comp = min((joint, alone), key=lambda c: c.baseline_total)
    lo, hi = comp.interval
    kind: Kind = "groups" if comp.improvement > 0 else \
        "all_in_one" if comp.baseline == "all_in_one" else "single_task"
    names = [[tasks[t] for t in g] for g in grouping.groups]
    baseline_groups = [list(tasks)] if comp.baseline == "all_in_one" else [[t] for t in tasks]
    if sorted(names) == sorted(baseline_groups):  # the better baseline itself: no comparison
        return predicted.model_copy(update={
            "groups": names, "kind": comp.baseline, "expected_improvement": 0.0,
            "baseline": comp.baseline, "improvement": None, "interval": None,
            "best_groups": names, "confirmation_seeds": [seed],
            "selected_by": predicted.selected_by.replace("; not measured", "")
            + "; the better baseline itself"})
    alone_note = "" if len(sample) == len(tasks) else \
        f" (every task alone: estimated from {len(sample)} of {len(tasks)} tasks)"
    chosen = grouping.groups if kind == "groups" else \
        (tuple(range(len(tasks))),) if kind == "all_in_one" else \
        tuple((t,) for t in range(len(tasks)))
    served = grouping.served_by if kind == "groups" else \
        tuple(0 if kind == "all_in_one" else t for t in range(len(tasks)))
    return predicted.model_copy(update={
        "groups": names if kind == "groups" else baseline_groups, "kind": kind,
        "served_by": dict(zip(tasks, served, strict=True)),
        "unmeasured_pairs": unmeasured_pairs(tasks, chosen, measured),
        "expected_improvement": round(comp.improvement if kind == "groups" else 0.0, 6),
        "baseline": comp.baseline, "improvement": round(comp.improvement, 6),
        "interval": [round(lo, 6), round(hi, 6)], "significant": lo > 0,
        "worse_beyond_noise": hi < 0, "best_groups": names,
        "measured_total_loss": round(float(sum(
            measured.loss[grouping.groups[g], seed][t]
            for t, g in enumerate(grouping.served_by))), 6),
        "confirmation_seeds": [seed],
        "selected_by": predicted.selected_by.replace("; not measured", "")
        + f"; checked on one fresh seed{alone_note}"})
