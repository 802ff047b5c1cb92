"""The checked level's arithmetic: its plan (the most tasks alone that fit, every grouping's
groups always), the pooled seed spread and its two comparisons, on constructed losses with
answers worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from affinity.checked import (
    MIN_SAMPLE,
    Grouping,
    against_all_in_one,
    against_alone,
    plan_check,
    pooled_spread,
)
from affinity.race import Group, Measurements


def cost_of(groups: list[Group]) -> float:
    """A stand-in for the ledger: a network costs its share of the tasks plus a little."""
    return sum(0.1 + len(g) / 6 for g in groups)


@st.composite
def groupings(draw: st.DrawFn) -> tuple[int, list[Grouping]]:
    n = draw(st.integers(2, 12))
    out = []
    for k in draw(st.lists(st.integers(1, n), min_size=1, max_size=3, unique=True)):
        labels = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
        groups = tuple(tuple(t for t in range(n) if labels[t] == b) for b in sorted(set(labels)))
        served = tuple(next(i for i, g in enumerate(groups) if t in g) for t in range(n))
        extra = draw(st.lists(st.integers(0, n - 1), max_size=n, unique=True))
        if len(extra) > 1:  # an overlapping group that serves no task
            groups += (tuple(sorted(extra)),)
        out.append(Grouping(len(groups), groups, served))
    return n, out


@settings(max_examples=200, deadline=None)
@given(groupings(), st.floats(0, 30), st.integers(0, 1000))
def test_the_plan_trains_every_serving_group_and_the_most_tasks_alone_that_fit(
        job: tuple[int, list[Grouping]], room: float, seed: int) -> None:
    n, plans = job
    check = plan_check(plans, n, seed, room, cost_of)
    groups = {p.groups[g] for p in plans for g in p.served_by} | {tuple(range(n))}
    least = [tuple(range(n)), *sorted(groups - {tuple(range(n))})]
    if check is None:  # not even the groups and the least sample fit (tasks alone cost alike)
        alone: list[Group] = [(t,) for t in range(n) if (t,) not in groups]
        needed = max(0, min(n, MIN_SAMPLE) - sum(len(g) == 1 for g in groups))
        assert cost_of(least + alone[:needed]) > room - 1e-9
        return
    assert cost_of(check.networks) <= room + 1e-9
    assert groups <= set(check.networks) and len(set(check.networks)) == len(check.networks)
    assert {g for g in check.networks if len(g) > 1} <= groups  # none that serves no task
    assert len(check.sample) >= min(n, MIN_SAMPLE)
    assert set(check.sample) == {g[0] for g in check.networks if len(g) == 1}
    left = [(t,) for t in range(n) if t not in check.sample]
    if left:  # maximal: one more task alone would not fit
        assert cost_of(check.networks + left[:1]) > room - 1e-9
    assert plan_check(plans, n, seed, room, cost_of) == check  # the same plan twice


def measurements(losses: dict[tuple[Group, int], list[float]]) -> Measurements:
    m = Measurements()
    n = max(len(v) for v in losses.values())
    for (group, seed), v in losses.items():
        row = np.full(n, np.nan)
        row[list(group)] = [v[t] for t in group]
        m.add(seed, [group], row[None])
    return m


def test_pooled_spread_is_the_relative_seed_spread_over_the_tasks() -> None:
    m = measurements({((0, 1), 0): [1.0, 2.0], ((0, 1), 1): [1.2, 1.8]})
    # each task's relative deviation from its mean: +-1/11 and +-1/19, one degree each
    expected = math.sqrt((2 * (0.1 / 1.1) ** 2 + 2 * (0.1 / 1.9) ** 2) / 2)
    assert pooled_spread(m, (0, 1), [0, 1]) == pytest.approx(expected)


def test_against_all_in_one_reads_every_task_and_adds_each_networks_spread() -> None:
    m = measurements({((0, 1, 2), 5): [1.0, 1.0, 2.0], ((0, 1), 5): [0.8, 0.9, 0],
                      ((2,), 5): [0, 0, 2.1]})
    grouping = Grouping(2, ((0, 1), (2,)), (0, 0, 1))
    comp = against_all_in_one(grouping, m, 5, spread=0.1, dof=3)
    assert comp.improvement == pytest.approx((4.0 - 3.8) / 4.0)
    # three networks: (0, 1) sums 1.7, (2,) 2.1, the all-in-one -4.0
    half = stats.t.ppf(0.975, 3) * math.sqrt(0.01 * (1.7 ** 2 + 2.1 ** 2 + 4.0 ** 2))
    assert comp.interval == pytest.approx((0.05 - half / 4, 0.05 + half / 4))


def test_against_alone_scales_the_sample_with_the_finite_population_correction() -> None:
    alone = [1.0, 2.0, 1.5, 1.0, 3.0, 2.5]
    grouped = [0.9, 1.8, 1.6, 0.8, 2.7, 2.4]
    losses = {((0, 1, 2, 3, 4, 5), 7): grouped}
    losses |= {((t,), 7): alone for t in range(6)}
    m = measurements(losses)
    grouping = Grouping(1, ((0, 1, 2, 3, 4, 5),), (0,) * 6)
    sample = [0, 2, 4, 5]
    comp = against_alone(grouping, m, 7, sample, spread=0.0, dof=6)
    d = np.array([alone[t] - grouped[t] for t in sample])
    scale = 6 / 4
    drop = scale * d.sum()
    total = scale * sum(alone[t] for t in sample)
    var = scale ** 2 * 4 * (1 - 4 / 6) * d.var(ddof=1)
    half = stats.t.ppf(0.975, 3) * math.sqrt(var)
    assert comp.improvement == pytest.approx(drop / total)
    assert comp.interval == pytest.approx(((drop - half) / total, (drop + half) / total))
    # every task sampled: no sampling error, only the seed spread
    whole = against_alone(grouping, m, 7, list(range(6)), spread=0.0, dof=6)
    assert whole.interval[0] == pytest.approx(whole.improvement)
    assert whole.interval[1] == pytest.approx(whole.improvement)
