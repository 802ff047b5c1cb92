"""Choose k (possibly overlapping) groups that maximise the tasks' summed predicted gain.

Each task is served by the chosen group in which its predicted gain is highest; every task
must be served and every chosen group serves at least one task. Solved over a pool of
candidate groups: every non-empty subset for up to ``max_exact_tasks`` tasks (the exact
optimum), otherwise a pruned pool (singles, pairs, the whole set, and groups grown greedily
from each task's best pair) whose optimum is a heuristic answer. Small problems are solved by
enumerating the partitions of the tasks into the blocks that each chosen group serves, the
rest (and the few where that bound is not met) as an integer program with
``scipy.optimize.milp`` (HiGHS).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from affinity.grouping.gain import Rule, group_gains

MAX_EXACT_TASKS = 10


@dataclass(frozen=True)
class Selection:
    """k chosen groups, which group serves each task, and the predicted gains."""

    groups: list[tuple[int, ...]]
    served_by: list[int]  # index into groups, per task
    task_gain: np.ndarray  # (n_tasks,) predicted gain of each task in its serving group
    method: str

    @property
    def total_gain(self) -> float:
        return float(self.task_gain.sum())

    def ordered(self) -> Selection:
        """The same selection with its groups in order of their first task."""
        order = sorted(range(len(self.groups)), key=lambda g: self.groups[g])
        where = {old: new for new, old in enumerate(order)}
        return Selection([self.groups[g] for g in order], [where[g] for g in self.served_by],
                         self.task_gain, self.method)


def all_subsets(n_tasks: int) -> list[tuple[int, ...]]:
    return [s for r in range(1, n_tasks + 1) for s in itertools.combinations(range(n_tasks), r)]


def pruned_pool(affinity: np.ndarray, rule: Rule) -> list[tuple[int, ...]]:
    """Singles, pairs, the whole set, and for each pair the groups met while growing it
    greedily (adding the task that most raises the group's summed gain, while it rises)."""
    n = len(affinity)
    pool: set[tuple[int, ...]] = {(t,) for t in range(n)} | set(
        itertools.combinations(range(n), 2))
    pool.add(tuple(range(n)))
    for pair in itertools.combinations(range(n), 2):
        group = list(pair)
        score = np.nansum(group_gains(affinity, [group], rule))
        while len(group) < n:
            rest = [t for t in range(n) if t not in group]
            trials = [sorted(group + [t]) for t in rest]
            scores = np.nansum(group_gains(affinity, trials, rule), axis=1)
            best = int(np.argmax(scores))
            if scores[best] <= score:
                break
            group, score = trials[best], scores[best]
            pool.add(tuple(group))
    return sorted(pool, key=lambda g: (len(g), g))


def select_groups(affinity: np.ndarray, k: int, *, rule: Rule = "sum",
                  max_exact_tasks: int = MAX_EXACT_TASKS) -> Selection:
    """The best choice of ``k`` groups under ``rule`` (see ``gain.py``) on ``affinity``.

    affinity : ndarray of shape (n_tasks, n_tasks), row = source i, column = target j
    """
    return top_groupings(affinity, k, rule=rule, max_exact_tasks=max_exact_tasks)[0]


def top_groupings(affinity: np.ndarray, k: int, *, n_best: int = 1, rule: Rule = "sum",
                  max_exact_tasks: int = MAX_EXACT_TASKS) -> list[Selection]:
    """The best choice of ``k`` groups, then up to ``n_best - 1`` runners-up, best first.

    The runners-up are the best partitions of the tasks into k disjoint groups (enumerated
    when there are at most ``MAX_PARTITIONS`` of them), so that verification can compare a
    few good alternatives; with more partitions than that, only the best choice is returned.
    """
    affinity = np.asarray(affinity, dtype=float)
    n = len(affinity)
    if affinity.shape != (n, n) or not np.isfinite(affinity).all():
        raise ValueError(f"affinity must be a finite square matrix; got shape {affinity.shape}")
    exact = n <= max_exact_tasks
    if k == 1:  # one group must serve every task: the whole set is the only choice
        pool = [tuple(range(n))]
    else:
        pool = all_subsets(n) if exact else pruned_pool(affinity, rule)
    best = choose_groups(pool, group_gains(affinity, pool, rule), k,
                         method="exact" if exact or k == 1 else "pruned")
    found = [best]
    if n_best > 1:
        seen = {frozenset(best.groups)}
        for sel in top_partitions(affinity, k, n_best, rule):
            if frozenset(sel.groups) not in seen and len(found) < n_best:
                seen.add(frozenset(sel.groups))
                found.append(sel)
    return found


def beside_everyone(affinity: np.ndarray, k: int, *, rule: Rule = "sum",
                    max_exact_tasks: int = MAX_EXACT_TASKS) -> Selection | None:
    """The whole set (the all-in-one network) and the k - 1 groups that most raise the tasks'
    predicted gains over their gains in it, chosen one at a time (each given the ones before;
    the first is the best single addition); every task is served by its best chosen group.
    None where fewer than k - 1 groups would serve a task."""
    affinity = np.asarray(affinity, dtype=float)
    n = len(affinity)
    everyone = tuple(range(n))
    pool = [g for g in (all_subsets(n) if n <= max_exact_tasks else pruned_pool(affinity, rule))
            if g != everyone]
    gains = group_gains(affinity, [everyone, *pool], rule)
    lift = np.maximum(np.nan_to_num(gains[1:] - gains[0], nan=0.0), 0.0)  # (pool, tasks)
    chosen: list[int] = []
    reached = np.zeros(n)
    for _ in range(k - 1):
        totals = np.maximum(lift, reached).sum(axis=1)
        totals[chosen] = -np.inf
        best = int(np.argmax(totals))
        if totals[best] <= reached.sum():
            return None
        chosen.append(best)
        reached = np.maximum(reached, lift[best])
    groups = [everyone, *(pool[g] for g in chosen)]
    own = group_gains(affinity, groups, rule)
    served = np.nanargmax(np.where(np.isnan(own), -np.inf, own), axis=0)
    if len(set(served.tolist())) < k:
        return None
    return Selection(groups, served.tolist(), own[served, np.arange(n)], "beside everyone")


MAX_PARTITIONS = 200_000
MAX_ENUMERATED = 1 << 24  # pool groups times blocks: every subset of 12 tasks at 12 tasks


def top_partitions(affinity: np.ndarray, k: int, n_best: int, rule: Rule) -> list[Selection]:
    """The ``n_best`` partitions into k disjoint groups with the highest summed gain, found by
    enumerating them all; empty when there are too many."""
    n = len(affinity)
    if k > n or stirling2(n, k) > MAX_PARTITIONS:
        return []
    labels, blocks, where = _occurring_blocks(n, k)
    subsets = [tuple(t for t in range(n) if int(m) >> t & 1) for m in blocks]
    score = np.nansum(group_gains(affinity, subsets, rule), axis=1)
    totals = score[where].sum(axis=1)
    order = np.argsort(-totals, kind="stable")[:n_best]
    out = []
    for row in order:
        groups = [tuple(np.flatnonzero(labels[row] == b).tolist()) for b in range(k)]
        served = labels[row].astype(int).tolist()
        own = group_gains(affinity, groups, rule)
        out.append(Selection(groups, served, np.array([own[served[j], j] for j in range(n)]),
                             "partition"))
    return out


@functools.lru_cache(maxsize=64)
def partitions(n: int, k: int) -> np.ndarray:
    """Every partition of n items into k non-empty blocks, one per row: the block of each
    item (restricted growth strings, grown one position at a time). Cached, read-only: every
    predictor's choice for a k enumerates the same partitions, twice with runners-up."""
    labels = np.zeros((1, 1), dtype=np.int8)
    for _ in range(1, n):
        top = labels.max(axis=1)
        parts = [np.column_stack([labels[top + 1 >= v], np.full((int((top + 1 >= v).sum()), 1),
                                                                    v, dtype=np.int8)])
                 for v in range(k)]
        labels = np.concatenate(parts)
        labels = labels[labels.max(axis=1) + (n - labels.shape[1]) >= k - 1]
    labels = labels[labels.max(axis=1) == k - 1]
    labels.setflags(write=False)
    return labels


def _occurring_blocks(n: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The partitions of n tasks into k blocks (``partitions``), the bit masks of the blocks
    that occur in them, and for each partition its blocks' indices into those masks, shape
    (partitions, k). Only the blocks that occur: every subset of 20 tasks is a million
    groups, where k = 1 has one."""
    labels = partitions(n, k)
    bits = 1 << np.arange(n)
    masks = np.stack([(labels == b) @ bits for b in range(k)], axis=1)
    blocks, where = np.unique(masks, return_inverse=True)
    return labels, blocks, where.reshape(masks.shape)


def stirling2(n: int, k: int) -> int:
    """The number of partitions of n items into k non-empty blocks."""
    row = [1] + [0] * k  # S(0, j)
    for _ in range(n):
        row = [0] + [j * row[j] + row[j - 1] for j in range(1, k + 1)]
    return row[k]


def choose_groups(pool: list[tuple[int, ...]], gains: np.ndarray, k: int, *,
                  method: str = "exact") -> Selection:
    """The best choice of k groups of ``pool``: the summed gain of each task at the chosen
    group that serves it is maximal; every task is served, every chosen group serves one.

    gains : ndarray of shape (len(pool), n_tasks), NaN where the task is not in the group.
    """
    n_groups, n = gains.shape
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of tasks ({n}); got {k}")
    found = _by_partitions(pool, gains, k, method)
    return found if found is not None else by_integer_program(pool, gains, k, method)


def by_integer_program(pool: list[tuple[int, ...]], gains: np.ndarray, k: int,
                       method: str = "exact") -> Selection:
    """``choose_groups`` as an integer program (HiGHS): any number of tasks."""
    n_groups, n = gains.shape
    pairs = np.argwhere(~np.isnan(gains))  # (group, task) where the task is in the group
    n_pairs, n_vars = len(pairs), n_groups + len(pairs)
    # variables: x_g (group chosen), then y_gj (task j served by group g)
    cost = np.concatenate([np.zeros(n_groups), -gains[pairs[:, 0], pairs[:, 1]]])
    rows = np.arange(n_pairs)
    served_only_if_chosen = coo_array(
        (np.concatenate([-np.ones(n_pairs), np.ones(n_pairs)]),
         (np.concatenate([rows, rows]), np.concatenate([pairs[:, 0], n_groups + rows]))),
        shape=(n_pairs, n_vars))
    chosen_only_if_serving = coo_array(
        (np.concatenate([np.ones(n_groups), -np.ones(n_pairs)]),
         (np.concatenate([np.arange(n_groups), pairs[:, 0]]),
          np.concatenate([np.arange(n_groups), n_groups + rows]))),
        shape=(n_groups, n_vars))
    served_once = coo_array((np.ones(n_pairs), (pairs[:, 1], n_groups + rows)), shape=(n, n_vars))
    k_groups = np.concatenate([np.ones(n_groups), np.zeros(n_pairs)])[None, :]
    res = milp(cost, integrality=np.ones(n_vars), bounds=Bounds(0, 1),
               constraints=[LinearConstraint(served_only_if_chosen, -np.inf, 0),
                            LinearConstraint(chosen_only_if_serving, -np.inf, 0),
                            LinearConstraint(served_once, 1, 1),
                            LinearConstraint(k_groups, k, k)])
    if res.x is None:
        raise RuntimeError(f"grouping solver failed: {res.message}")
    chosen = [g for g in range(n_groups) if res.x[g] > 0.5]
    served = {int(pairs[p, 1]): int(pairs[p, 0]) for p in range(n_pairs)
              if res.x[n_groups + p] > 0.5}
    return Selection([pool[g] for g in chosen], [chosen.index(served[j]) for j in range(n)],
                     np.array([gains[served[j], j] for j in range(n)]), method)


def _by_partitions(pool: list[tuple[int, ...]], gains: np.ndarray, k: int,
                   method: str) -> Selection | None:
    """``choose_groups`` by enumeration, where the pool's groups times the blocks that occur
    in the partitions number at most ``MAX_ENUMERATED`` (a hundredth of the integer
    program's time at 8 tasks). The tasks a chosen group serves form a block, and the blocks
    partition the tasks; a block's best value is its summed gain in the best pool group
    holding it, so the best partition's value bounds every choice of k groups, and is one
    when its blocks' best groups differ. None when they do not (or when there are too many
    partitions): the integer program decides."""
    n = gains.shape[1]
    if stirling2(n, k) > MAX_PARTITIONS:
        return None
    labels, blocks, masks = _occurring_blocks(n, k)
    if len(pool) * len(blocks) > MAX_ENUMERATED:
        return None
    inside = (blocks[:, None] >> np.arange(n)) & 1  # (blocks, tasks)
    holds = ~np.isnan(gains)
    group_masks = holds @ (1 << np.arange(n))
    value = np.where((group_masks[:, None] & blocks) == blocks,
                     np.where(holds, gains, 0.0) @ inside.T, -np.inf)  # (pool, blocks)
    best_group, best_value = value.argmax(axis=0), value.max(axis=0)
    totals = best_value[masks].sum(axis=1)
    row = int(np.argmax(totals))
    chosen = best_group[masks[row]]
    if not np.isfinite(totals[row]) or len(set(chosen.tolist())) < k:
        return None
    order = sorted(chosen.tolist())
    served = [order.index(int(chosen[b])) for b in labels[row]]
    return Selection([pool[g] for g in order], served,
                     np.array([gains[order[served[j]], j] for j in range(n)]), method)


class TaskGrouper:
    """scikit-learn style wrapper of ``select_groups``.

    Parameters: n_groups (k), rule (sum or mean), max_exact_tasks (largest T solved
    over every subset). Attributes after ``fit``: groups_, served_by_, task_gain_,
    total_gain_, method_.
    """

    def __init__(self, n_groups: int = 2, *, rule: str = "sum",
                 max_exact_tasks: int = MAX_EXACT_TASKS) -> None:
        self.n_groups = n_groups
        self.rule = rule
        self.max_exact_tasks = max_exact_tasks

    def fit(self, affinity: np.ndarray) -> TaskGrouper:
        sel = select_groups(affinity, self.n_groups, rule=self.rule,
                            max_exact_tasks=self.max_exact_tasks)
        self.groups_, self.served_by_, self.task_gain_ = sel.groups, sel.served_by, sel.task_gain
        self.total_gain_, self.method_ = sel.total_gain, sel.method
        return self
