"""Grouping: exact selection vs brute force, known block structures, clusterings, auxiliaries."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from affinity.auxiliary import rank_auxiliaries
from affinity.grouping import (
    TaskGrouper,
    cluster_tasks,
    group_gains,
    partition_quality,
    select_groups,
)
from affinity.grouping.gain import fit_beta, summed_gains
from affinity.grouping.select import (
    all_subsets,
    beside_everyone,
    by_integer_program,
    by_local_search,
    choose_groups,
    dendrogram_pool,
    pruned_pool,
    stirling2,
    top_groupings,
    top_partitions,
)
from tests.conftest import pair_beside_the_rest


def brute_force_best(affinity: np.ndarray, k: int, rule: str) -> float:
    """Try every choice of k candidate groups; each task takes its best chosen group."""
    pool = all_subsets(len(affinity))
    gains = group_gains(affinity, pool, rule)
    best = -np.inf
    for combo in itertools.combinations(range(len(pool)), k):
        chosen = gains[list(combo)]
        if not np.isnan(chosen).all(axis=0).any():
            best = max(best, np.nanmax(chosen, axis=0).sum())
    return best


def blocks(sizes: list[int], inside: float = 0.5, outside: float = -0.3,
           noise: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    labels = np.repeat(np.arange(len(sizes)), sizes)
    a = np.where(labels[:, None] == labels[None, :], inside, outside)
    a = a + np.random.default_rng(seed).normal(scale=noise, size=a.shape)
    np.fill_diagonal(a, 1.0)
    return a, labels


def labels_of(groups, n: int) -> np.ndarray:
    out = np.full(n, -1)
    for g, group in enumerate(groups):
        out[list(group)] = g
    return out


def test_group_gains_follow_the_sum_and_mean_rules():
    a = np.array([[0, .1, .2, .3], [.4, 0, -.5, .6], [.7, .8, 0, .9], [.1, .2, .3, 0]])
    mean = group_gains(a, [(0, 1, 2), (3,)], rule="mean")
    assert mean[0, 0] == pytest.approx((a[1, 0] + a[2, 0]) / 2)  # sources 1, 2 onto target 0
    assert mean[0, 2] == pytest.approx((a[0, 2] + a[1, 2]) / 2)
    assert np.isnan(mean[0, 3]) and mean[1, 3] == 0.0  # not a member; alone
    total = group_gains(a, [(0, 1, 2), (3,)])
    assert total[0, 0] == pytest.approx(a[1, 0] + a[2, 0])
    assert total[0, 2] == pytest.approx(a[0, 2] + a[1, 2])
    assert total[1, 3] == 0.0
    with pytest.raises(ValueError, match="rule must be one of sum, mean or a number; got 'max'"):
        group_gains(a, [(0, 1)], rule="max")
    # a number beta between: the partners' sum over (|g| - 1) ** beta; 0 and 1 are the rules
    half = group_gains(a, [(0, 1, 2)], rule=0.5)
    assert half[0, 0] == pytest.approx((a[1, 0] + a[2, 0]) / np.sqrt(2))
    np.testing.assert_allclose(group_gains(a, [(0, 1, 2)], 0.0), total[:1])
    np.testing.assert_allclose(group_gains(a, [(0, 1, 2)], 1.0), mean[:1])


def test_fit_beta_recovers_the_rule_that_made_the_gains():
    a = np.random.default_rng(3).normal(scale=0.3, size=(6, 6))
    groups = [g for r in (3, 4, 5) for g in itertools.combinations(range(6), r)]
    for beta in (0.0, 0.7, 1.0):
        assert fit_beta(a, groups, group_gains(a, groups, beta)) == pytest.approx(beta)
    assert fit_beta(a, [(0, 1)], group_gains(a, [(0, 1)])) is None  # no group of 3+


@pytest.mark.parametrize("rule", ["sum", "mean"])
@pytest.mark.parametrize(("n", "k", "seed"), [(4, 1, 0), (4, 2, 1), (5, 2, 2), (5, 3, 3),
                                              (6, 2, 4)])
def test_exact_selection_matches_brute_force(n, k, seed, rule):
    a = np.random.default_rng(seed).normal(scale=0.4, size=(n, n))
    sel = select_groups(a, k, rule=rule)
    assert sel.method == "exact" and len(sel.groups) == k
    assert sel.total_gain == pytest.approx(brute_force_best(a, k, rule))
    # every task is served by a chosen group that contains it, at its best gain there
    gains = group_gains(a, sel.groups, rule)
    for j in range(n):
        assert j in sel.groups[sel.served_by[j]]
        assert sel.task_gain[j] == pytest.approx(np.nanmax(gains[:, j]))


@pytest.mark.parametrize("seed", range(6))
def test_enumerated_choice_agrees_with_the_integer_program(seed):
    """The fast path (blocks of a partition, each at its best group) finds the integer
    program's optimum, on every subset and on a partial pool of loss-like gains."""
    rng = np.random.default_rng(seed)
    n = 5 + seed % 4
    every = all_subsets(n)
    pool = every if seed % 2 else [g for g in every if len(g) in (1, 2, n) or rng.random() < 0.3]
    gains = np.full((len(pool), n), np.nan)
    for i, g in enumerate(pool):
        gains[i, list(g)] = rng.normal(-1.0 if seed % 3 == 0 else 0.0, 0.3, len(g))
    for k in range(1, 4):
        fast, slow = choose_groups(pool, gains, k), by_integer_program(pool, gains, k)
        assert fast.total_gain == pytest.approx(slow.total_gain)
        assert len(set(fast.groups)) == k
        for j in range(n):
            assert j in fast.groups[fast.served_by[j]]
            assert fast.task_gain[j] == gains[pool.index(fast.groups[fast.served_by[j]]), j]


def test_the_integer_program_decides_when_the_best_blocks_share_a_group():
    """Both tasks fare best in the pair, so the best split's blocks share it; two groups
    must differ: the pair and a single."""
    pool = [(0,), (1,), (0, 1)]
    gains = np.array([[0.0, np.nan], [np.nan, 0.0], [1.0, 1.0]])
    sel = choose_groups(pool, gains, 2)
    assert sorted(sel.groups) == [(0,), (0, 1)] or sorted(sel.groups) == [(0, 1), (1,)]
    assert sel.total_gain == pytest.approx(1.0)


def test_runner_up_partitions_match_brute_force():
    a = np.random.default_rng(5).normal(scale=0.4, size=(6, 6))
    ranked = top_groupings(a, 2, n_best=4)
    assert ranked[0].groups == select_groups(a, 2).groups
    partitions = []  # every split of 6 tasks into 2 disjoint groups, scored by brute force
    for r in range(1, 6):
        for first in itertools.combinations(range(6), r):
            if 0 in first:
                rest = tuple(t for t in range(6) if t not in first)
                partitions.append(np.nansum(group_gains(a, [first, rest])))
    expected = sorted(partitions, reverse=True)
    got = [sel.total_gain for sel in top_partitions(a, 2, 4, "sum")]
    np.testing.assert_allclose(got, expected[:4])
    assert len({frozenset(sel.groups) for sel in ranked}) == len(ranked) == 4
    assert [stirling2(n, k) for n, k in [(4, 2), (10, 3), (12, 4)]] == [7, 9330, 611501]
    assert top_partitions(np.zeros((12, 12)), 4, 3, "sum") == []  # too many to enumerate


def test_selection_recovers_planted_blocks_and_is_deterministic():
    a, labels = blocks([3, 4, 3])
    first, second = select_groups(a, 3), select_groups(a, 3)
    assert first.groups == second.groups
    assert adjusted_rand_score(labels, labels_of(first.groups, 10)) == 1


def test_pruned_pool_beyond_the_exact_limit_still_finds_blocks():
    a, labels = blocks([5, 5, 4, 6], seed=1)
    grouper = TaskGrouper(4, max_exact_tasks=8).fit(a)
    assert grouper.method_ == "pruned"
    assert adjusted_rand_score(labels, labels_of(grouper.groups_, 20)) == 1


def test_k_one_is_the_whole_set_and_bad_input_is_refused():
    a, _ = blocks([2, 2])
    assert select_groups(a, 1).groups == [(0, 1, 2, 3)]
    with pytest.raises(ValueError, match="k must be between 1 and the number of tasks"):
        select_groups(a, 5)
    with pytest.raises(ValueError, match="affinity must be a finite square matrix"):
        select_groups(np.ones((2, 3)), 1)


@pytest.mark.parametrize("method", ["spectral", "agglomerative", "louvain"])
def test_clusterings_recover_planted_blocks(method):
    a, labels = blocks([3, 3, 4], seed=2)
    parts = cluster_tasks(a, method, 3)
    assert adjusted_rand_score(labels, labels_of(parts, 10)) == 1
    quality = partition_quality(a, parts)
    worse = partition_quality(a, [list(range(5)), list(range(5, 10))])
    assert quality["modularity"] > worse["modularity"]
    assert quality["predicted_gain"] > worse["predicted_gain"]


def test_clustering_rejects_unknown_method():
    with pytest.raises(ValueError, match="method must be one of spectral, agglomerative"):
        cluster_tasks(np.eye(3), "kmeans", 2)


def test_auxiliaries_ranked_flagged_and_selected():
    tasks = ["p", "good", "weak", "bad", "noisy"]
    m = np.zeros((5, 5))
    m[:, 0] = [0.0, 0.3, 0.05, -0.2, 0.1]
    std = np.zeros((5, 5))
    std[4, 0] = 0.5  # positive on average but within its spread over seeds
    ranked = rank_auxiliaries(m, std, 0, tasks, max_aux=3)
    assert [c["task"] for c in ranked] == ["good", "noisy", "weak", "bad"]
    assert [c["selected"] for c in ranked] == [True, False, True, False]
    assert [c["harmful"] for c in ranked] == [False, False, False, True]
    assert sum(c["selected"] for c in rank_auxiliaries(m, std, 0, tasks, max_aux=1)) == 1


def test_beside_everyone_adds_the_group_that_helps_most_beside_the_whole_set():
    """The whole set plus (0, 1), each pair served by its own network; nothing more helps."""
    a = pair_beside_the_rest()
    sel = beside_everyone(a, 2)
    assert sel is not None and sel.groups == [(0, 1, 2, 3), (0, 1)]
    assert sel.served_by == [1, 1, 0, 0]
    assert sel.task_gain == pytest.approx([1.0, 1.0, 0.9, 0.9])
    assert beside_everyone(a, 3) is None


def test_beside_everyone_agrees_with_brute_force_for_one_addition():
    rng = np.random.default_rng(3)
    everyone = tuple(range(6))
    for _ in range(5):
        a = rng.normal(size=(6, 6))
        base = group_gains(a, [everyone])[0]
        best = max(np.maximum(base, np.nan_to_num(group_gains(a, [g])[0], nan=-np.inf)).sum()
                   for g in all_subsets(6) if g != everyone)
        sel = beside_everyone(a, 2)
        assert sel is not None and sel.total_gain == pytest.approx(best)


def test_one_group_of_many_tasks_looks_only_at_the_blocks_that_occur():
    """k = 1 over 30 tasks: one partition, one block (the whole set). Enumerating every subset
    of the tasks instead (a billion) would not fit in memory."""
    rng = np.random.default_rng(0)
    found = top_groupings(rng.normal(size=(30, 30)), 1, n_best=3)
    assert [s.groups for s in found] == [[tuple(range(30))]]


def naive_pruned_pool(affinity: np.ndarray, rule: str) -> list[tuple[int, ...]]:
    """Each pair grown one task at a time, one group at a time: the reference."""
    n = len(affinity)
    pool = {(t,) for t in range(n)} | set(itertools.combinations(range(n), 2))
    pool.add(tuple(range(n)))
    for pair in itertools.combinations(range(n), 2):
        group = list(pair)
        score = np.nansum(group_gains(affinity, [group], rule))
        while len(group) < n:
            trials = [sorted(group + [t]) for t in range(n) if t not in group]
            scores = np.nansum(group_gains(affinity, trials, rule), axis=1)
            if scores.max() <= score:
                break
            group, score = trials[int(np.argmax(scores))], scores.max()
            pool.add(tuple(group))
    return sorted(pool, key=lambda g: (len(g), g))


@pytest.mark.parametrize("rule", ["sum", "mean", 0.5])
def test_the_pruned_pool_grows_every_pair_as_the_reference_does(rule):
    for n, seed in [(5, 0), (9, 1), (14, 2)]:
        a = np.random.default_rng(seed).normal(0, 0.05, (n, n))
        assert pruned_pool(a, rule) == naive_pruned_pool(a, rule)


def test_summed_gains_are_the_group_gains_row_sums():
    a = np.random.default_rng(3).normal(size=(7, 7))
    groups = all_subsets(7)
    for rule in ("sum", "mean", 0.7):
        np.testing.assert_allclose(summed_gains(a, groups, rule),
                                   np.nansum(group_gains(a, groups, rule), axis=1))


def check_selection(sel, pool: list[tuple[int, ...]], gains: np.ndarray, k: int) -> None:
    """k distinct pool groups; every task served by a group that holds it, at its gain
    there; every group serves a task."""
    assert len(set(sel.groups)) == k and set(sel.groups) <= set(pool)
    assert sorted(set(sel.served_by)) == list(range(k))
    for j, g in enumerate(sel.served_by):
        assert j in sel.groups[g]
        assert sel.task_gain[j] == pytest.approx(gains[pool.index(sel.groups[g]), j])


def test_the_local_search_comes_near_the_integer_programs_optimum():
    """On pruned pools of 16 tasks in planted clusters, four draws, k = 2..4: a valid choice
    every time, the integer program's optimum in at least 10 of the 12, never 5% short."""
    short = []
    for seed in range(4):
        a, _ = blocks([4, 4, 4, 4], inside=0.05, outside=-0.02, noise=0.03, seed=seed)
        np.fill_diagonal(a, 0.0)
        pool = pruned_pool(a, "sum")
        gains = group_gains(a, pool, "sum")
        for k in (2, 3, 4):
            found = by_local_search(pool, gains, k)
            check_selection(found, pool, gains, k)
            best = by_integer_program(pool, gains, k).total_gain
            short.append((best - found.total_gain) / abs(best))
    assert sum(s < 1e-9 for s in short) >= 10 and max(short) < 0.05


def test_forty_tasks_choose_their_planted_clusters_from_the_searched_pool():
    """40 tasks in 4 planted clusters: beyond the integer program's pool size the choice of
    4 groups is the local search's, and it finds the clusters; the runner-ups are skipped
    (too many partitions), not enumerated."""
    a, labels = blocks([10, 10, 10, 10], seed=4)
    found = top_groupings(a, 4, n_best=3)
    assert len(found) == 1 and found[0].method == "pruned"
    assert adjusted_rand_score(labels, labels_of(found[0].groups, 40)) == 1


def test_every_group_serves_a_task_when_gains_tie():
    """Zero gains everywhere (an untrained pairwise matrix): ties everywhere, yet each chosen
    group serves a task."""
    a = np.zeros((24, 24))
    pool = pruned_pool(a, "sum")
    gains = group_gains(a, pool, "sum")
    for k in (2, 3, 5):
        check_selection(by_local_search(pool, gains, k), pool, gains, k)


def test_beyond_sixty_four_tasks_the_pool_is_the_dendrogram_and_finds_the_blocks():
    """300 tasks in 6 planted blocks (positive within, negative across): the pool is the
    average-link dendrogram's clusters (nested: at most 2T - 1 groups, each the union of two
    smaller ones), it holds every block, and the choice of 6 groups is the blocks."""
    a, labels = blocks([50] * 6, seed=5)
    pool = pruned_pool(a, "sum")
    assert pool == dendrogram_pool(a) and len(pool) <= 2 * 300 - 1
    assert {tuple(np.flatnonzero(labels == b).tolist()) for b in range(6)} <= set(pool)
    assert all(len(g) == 1 or any(set(h) < set(g) for h in pool if len(h) < len(g))
               for g in pool)
    found = select_groups(a, 6)
    assert adjusted_rand_score(labels, labels_of(found.groups, 300)) == 1
