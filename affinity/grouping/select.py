"""Choose k (possibly overlapping) groups that maximise the tasks' summed predicted gain.

Each task is served by the chosen group in which its predicted gain is highest; every task
must be served and every chosen group serves at least one task. Solved over a pool of
candidate groups: every non-empty subset for up to ``max_exact_tasks`` tasks (the exact
optimum), otherwise a pruned pool (singles, pairs, the whole set, and groups grown greedily
from pairs; beyond 20 tasks, each task's 12 best pairs; beyond 64, the clusters of the affinity
graph's dendrogram) whose optimum is a heuristic answer.
Small problems are solved by enumerating the partitions of the tasks into the blocks that
each chosen group serves, the rest (and the few where that bound is not met) as an integer
program with ``scipy.optimize.milp`` (HiGHS); a pruned pool of more than
``MAX_PROGRAM_GROUPS`` groups by local search (swapping groups, moving tasks between blocks,
then the integer program over the groups it found best and a few per task), which reached
the program's optimum in 92% of ``bench/targets/selection.py``'s choices at 16 and 20 tasks.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array
from scipy.spatial.distance import squareform

from affinity.grouping.clustering import similarity
from affinity.grouping.gain import Rule, group_gains, membership, summed_gains

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
    greedily (adding the task that most raises the group's summed gain, the lowest such
    task on a tie, while it rises). Every pair grows at once: one ``summed_gains`` call per
    size, over every growing group's every next task. Cached for the rules of a beta: every
    k's choice by one predictor grows the same pool."""
    affinity = np.ascontiguousarray(affinity, dtype=float)
    if len(affinity) > GROWN_POOL_TASKS:
        return dendrogram_pool(affinity)
    if isinstance(rule, str | int | float):
        return list(_cached_pool(affinity.tobytes(), len(affinity), rule))
    return _grown_pool(affinity, rule)


@functools.lru_cache(maxsize=32)
def _cached_pool(raw: bytes, n: int, rule: str | float) -> tuple[tuple[int, ...], ...]:
    return tuple(_grown_pool(np.frombuffer(raw).reshape(n, n), rule))


def _grown_pool(affinity: np.ndarray, rule: Rule) -> list[tuple[int, ...]]:
    n = len(affinity)
    pairs = list(itertools.combinations(range(n), 2)) if n <= EVERY_PAIR_GROWS \
        else _closest_pairs(affinity, rule)
    bits = 1 << np.arange(n, dtype=np.int64) if n < 63 else None
    grown: list[np.ndarray] = []
    member = membership(pairs, n)
    score = summed_gains(affinity, member, rule)
    while len(member) and n > member[0].sum():
        row, task = np.nonzero(~member)  # every growing group, every task outside it
        trials = member[row]
        trials[np.arange(len(row)), task] = True
        scores = summed_gains(affinity, trials, rule)
        first = np.lexsort((task, -scores, row))  # per group: its best, then lowest task
        best = first[np.r_[True, row[first][1:] != row[first][:-1]]]
        grows = scores[best] > score
        member, score = trials[best][grows], scores[best][grows]
        grown.append(np.unique(member @ bits) if bits is not None else member)
    pool: set[tuple[int, ...]] = {(t,) for t in range(n)} | {tuple(range(n))} \
        | set(itertools.combinations(range(n), 2))
    for found in grown:
        rows = (found[:, None] >> np.arange(n)) & 1 if bits is not None else found
        pool.update(tuple(np.flatnonzero(r).tolist()) for r in rows)
    return sorted(pool, key=lambda g: (len(g), g))


EVERY_PAIR_GROWS = 20
GROWN_PARTNERS = 12
"""Beyond ``EVERY_PAIR_GROWS`` tasks only the pairs of each task with its ``GROWN_PARTNERS``
best partners grow (at 40 tasks 400-odd of the 780 pairs: half the pool, half the time; at
16 and 20 tasks, where every pair grows, it would have cost the best choice 0.5% of its
predicted gain on average, up to 15%: ``bench/targets/selection.py``'s matrices)."""


GROWN_POOL_TASKS = 64
"""Beyond this many tasks the pool is the affinity graph's average-link dendrogram: growing
each task's pairs costs tasks x partners x tasks gains a step (at 500 tasks, minutes and
gigabytes before the first choice)."""


def dendrogram_pool(affinity: np.ndarray) -> list[tuple[int, ...]]:
    """Singles, the whole set and every cluster of the average-link dendrogram of the
    symmetrised affinity (``clustering.similarity``): 2T - 1 groups, nested, so that every
    cut of the tree (each number of clusters) is a choice the pool holds."""
    n = len(affinity)
    sim = similarity(affinity)
    dist = sim.max() - sim
    np.fill_diagonal(dist, 0.0)
    tree = linkage(squareform(dist, checks=False), method="average")
    members: list[tuple[int, ...]] = [(t,) for t in range(n)]
    for a, b, _, _ in tree:
        members.append(tuple(sorted(members[int(a)] + members[int(b)])))
    return sorted(set(members), key=lambda g: (len(g), g))


def _closest_pairs(affinity: np.ndarray, rule: Rule) -> list[tuple[int, int]]:
    """Each task's pairs with the ``GROWN_PARTNERS`` partners of highest summed pair gain."""
    n = len(affinity)
    pairs = list(itertools.combinations(range(n), 2))
    both = np.full((n, n), -np.inf)
    both[tuple(np.array(pairs).T)] = summed_gains(affinity, membership(pairs, n), rule)
    both = np.maximum(both, both.T)
    best = np.argsort(-both, axis=1, kind="stable")[:, :GROWN_PARTNERS]
    return sorted({(min(i, int(j)), max(i, int(j))) for i in range(n) for j in best[i]})


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
    if found is None and method == "pruned" and len(pool) > MAX_PROGRAM_GROUPS:
        found = by_local_search(pool, gains, k, method)
    return found if found is not None else by_integer_program(pool, gains, k, method)


LOCAL_SEARCH_STARTS = 3
"""Groups of highest summed gain the local search starts from (beside the whole set and the
clusterings)."""
REDUCED_PER_TASK = 3
"""Each task's best groups in the small pool the integer program polishes the search over."""
MAX_PROGRAM_GROUPS = 400
"""Pruned pools of more groups than this (from about 14 tasks on) are searched locally: the
integer program over 900 groups of 20 tasks takes about 0.2 to 0.7 s a choice, over 8,000 of
40 tasks more than ten minutes."""


def by_local_search(pool: list[tuple[int, ...]], gains: np.ndarray, k: int,
                    method: str = "pruned", starts: int = LOCAL_SEARCH_STARTS) -> Selection | None:
    """``choose_groups`` by local search, for pools too large for the integer program. From
    each start (average-link clusterings of the tasks, the whole set, the ``starts`` groups
    of highest summed gain), groups are added greedily, then swapped one at a time for any
    pool group and tasks moved between the blocks they serve while the total gain rises.
    The integer program then decides over a small pool: every local optimum's groups, each
    task's ``REDUCED_PER_TASK`` best and the groups of highest summed gain. Every chosen
    group serves a task and every task is served. A heuristic: its answer can fall short of
    the optimum over the pool. None when no start reaches k groups that serve every task."""
    n_groups, n = gains.shape
    value = np.where(np.isnan(gains), -np.inf, gains)  # (pool, tasks)
    floor = np.full(n, -np.inf)
    order = np.argsort(-np.nansum(gains, axis=1), kind="stable")
    everyone = [g for g in range(n_groups) if len(pool[g]) == n]
    masks = ~np.isnan(gains) @ (1 << np.arange(n, dtype=np.int64)) if n < 63 else None
    worth = np.where(np.isnan(gains), 0.0, gains)
    best: tuple[float, list[int]] | None = None
    optima: set[int] = set()
    firsts = [[g] for g in dict.fromkeys([*everyone, *order[:starts].tolist()])]
    clustered = _clustered_starts(pool, value, masks, k) if masks is not None else []
    for start in [*clustered, *firsts]:
        chosen = list(start)
        while len(chosen) < k:
            g = _best_addition(value, chosen, floor)
            if g is None:
                break
            chosen.append(g)
        if len(chosen) < k:
            continue
        total = _swap_to_local_optimum(value, chosen, floor)
        while np.isfinite(total) and masks is not None:
            moved = _move_tasks(value, worth, chosen, masks)
            if moved is None:
                break
            chosen = moved
            total = _swap_to_local_optimum(value, chosen, floor)
        if np.isfinite(total):
            optima.update(chosen)
            if best is None or total > best[0] + 1e-12:
                best = (total, sorted(chosen))
    if best is None:
        return None
    chosen = best[1]
    # the integer program over a small pool: every local optimum's groups and, for each
    # task, the groups where it gains most (a few hundred groups: a fraction of a second)
    per_task = np.argsort(-value, axis=0, kind="stable")[:REDUCED_PER_TASK].ravel().tolist()
    reduced = sorted(optima | set(per_task) | set(order[:REDUCED_PER_TASK * 5].tolist()))
    exact = by_integer_program([pool[g] for g in reduced], gains[reduced], k, method)
    if exact.total_gain > best[0] + 1e-12:
        where = {pool[g]: g for g in reduced}
        chosen = sorted(where[group] for group in exact.groups)
    served = _serving_every_group(value[chosen])
    return Selection([pool[g] for g in chosen], served.tolist(),
                     value[chosen][served, np.arange(n)], method)


def _clustered_starts(pool: list[tuple[int, ...]], value: np.ndarray, masks: np.ndarray,
                      k: int) -> list[list[int]]:
    """Starting choices from average-link clusterings of the tasks into k, k + 1, ... blocks
    by the pool's pair gains, each block's best pool group holding it (at most k distinct
    groups, the first k of most value)."""
    n = value.shape[1]
    index = {g: i for i, g in enumerate(pool)}
    sim = np.zeros((n, n))
    for i, j in itertools.combinations(range(n), 2):
        if (i, j) in index:
            sim[i, j] = sim[j, i] = value[index[i, j], [i, j]].sum()
    distance = sim.max() - sim
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    starts = []
    for blocks in range(k, min(n, k + 2) + 1):
        labels = fcluster(tree, blocks, criterion="maxclust")
        chosen: list[int] = []
        for b in np.unique(labels):
            block = np.flatnonzero(labels == b)
            bits = int(sum(1 << int(t) for t in block))
            holds = np.flatnonzero((masks & bits) == bits)
            worth = value[np.ix_(holds, block)].sum(axis=1)
            g = int(holds[np.argmax(worth)])
            if g not in chosen:
                chosen.append(g)
        starts.append(chosen[:k])
    return starts


def _move_tasks(value: np.ndarray, worth: np.ndarray, chosen: list[int],
                masks: np.ndarray) -> list[int] | None:
    """The best move of one task from the block its group serves to another block, each
    block then served by its best pool group holding it; the new choice where it raises the
    total, else None. (Swaps change one group at a time; a move changes two, which a swap
    cannot reach when no group of the pool holds the block in between.)"""
    n = value.shape[1]
    served = _serving_every_group(value[chosen])
    blocks = [int(((served == b) * (1 << np.arange(n, dtype=np.int64))).sum())
              for b in range(len(chosen))]
    current = float(value[chosen][served, np.arange(n)].sum())
    moves, trial = [], []
    for j in range(n):
        source = int(served[j])
        if blocks[source] == 1 << j:
            continue  # a block keeps a task
        for target in range(len(chosen)):
            if target != source:
                moves.append((source, target))
                trial += [blocks[source] & ~(1 << j), blocks[target] | 1 << j]
    if not moves:
        return None
    wanted = np.asarray(trial, dtype=np.int64)
    inside = ((wanted[:, None] >> np.arange(n)) & 1).astype(bool)  # (blocks, tasks)
    block, group = np.nonzero((masks[None, :] & wanted[:, None]) == wanted[:, None])
    sums = (worth[group] * inside[block]).sum(axis=1)  # each block in each group holding it
    order = np.lexsort((group, -sums, block))  # per block: its best group, the first on a tie
    first = order[np.r_[True, block[order][1:] != block[order][:-1]]]
    best_group = np.zeros(len(wanted), dtype=int)
    best_worth = np.full(len(wanted), -np.inf)
    best_group[block[first]], best_worth[block[first]] = group[first], sums[first]
    now = np.array([value[g, served == b].sum() for b, g in enumerate(chosen)])
    pairs = np.array(moves)
    gain = best_worth[0::2] + best_worth[1::2] - now[pairs[:, 0]] - now[pairs[:, 1]]
    m = int(np.argmax(gain))
    if not gain[m] > 1e-12:
        return None
    source, target = moves[m]
    new = list(chosen)
    new[source], new[target] = int(best_group[2 * m]), int(best_group[2 * m + 1])
    if len(set(new)) < len(new):
        return None
    reached = value[new].max(axis=0)
    return new if reached.sum() > current + 1e-12 else None


def _serving_every_group(rows: np.ndarray) -> np.ndarray:
    """Per task, the row (group) of its best value, ties given to a group that would
    otherwise serve no task (a local search keeps every group best for some task, or tied)."""
    served = np.argmax(rows, axis=0)
    reached = rows[served, np.arange(rows.shape[1])]
    for g in range(len(rows)):
        if (served == g).any():
            continue
        counts = np.bincount(served, minlength=len(rows))
        tied = np.flatnonzero((rows[g] == reached) & (counts[served] > 1))
        if len(tied):
            served[tied[0]] = g
    return served


def _served_values(value: np.ndarray, chosen: list[int],
                   floor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each task's best value among the ``chosen`` groups (``floor`` with none), and which
    position of ``chosen`` serves it (-1 with none; on a tie the last: a group added later
    serves the tasks it ties on)."""
    if not chosen:
        return floor.copy(), np.full(len(floor), -1)
    rows = value[chosen]
    owner = len(chosen) - 1 - np.argmax(rows[::-1], axis=0)
    reached = rows[owner, np.arange(rows.shape[1])]
    return reached, np.where(np.isfinite(reached), owner, -1)


def _candidate_totals(value: np.ndarray, others: list[int], floor: np.ndarray) -> np.ndarray:
    """For every pool group g: the total value of ``others`` + g, -inf where g could serve
    no task (ties count), leave one of ``others`` serving none, or leave a task unserved (when every
    task is served; before that, uncovered tasks do not count, so that greedy additions
    can cover them one group at a time)."""
    reached, owner = _served_values(value, others, floor)
    takes = (value >= reached) & np.isfinite(value)  # (pool, tasks): g can serve the task
    feasible = takes.any(axis=1)
    if others:  # each of ``others`` keeps a task it serves
        serves = (owner[:, None] == np.arange(len(others))).astype(float)  # (tasks, others)
        feasible &= ((~takes).astype(float) @ serves > 0).all(axis=1)
    both = np.maximum(value, reached)
    covered = np.isfinite(both)
    totals = np.where(covered, both, 0.0).sum(axis=1) - (~covered).sum(axis=1) * _UNCOVERED
    totals[others] = -np.inf
    return np.where(feasible, totals, -np.inf)


_UNCOVERED = 1e6
"""What an unserved task costs a choice under construction: more than any gain."""


def _best_addition(value: np.ndarray, chosen: list[int], floor: np.ndarray) -> int | None:
    """The pool group whose addition to ``chosen`` raises the total most; None where none
    can join (``_candidate_totals``)."""
    totals = _candidate_totals(value, chosen, floor)
    g = int(np.argmax(totals))
    return g if np.isfinite(totals[g]) else None


def _swap_to_local_optimum(value: np.ndarray, chosen: list[int], floor: np.ndarray) -> float:
    """Swap chosen groups one at a time for the pool group that most raises the total, in
    place, until no swap does; the total (-inf while a task is unserved)."""
    def total() -> float:
        reached = _served_values(value, chosen, floor)[0]
        return float(reached.sum())

    current = total()
    improved = True
    while improved:
        improved = False
        for position in range(len(chosen)):
            others = chosen[:position] + chosen[position + 1:]
            totals = _candidate_totals(value, others, floor)
            g = int(np.argmax(totals))
            if totals[g] > current + 1e-12 and totals[g] > -_UNCOVERED / 2:
                chosen[position] = g
                current = total()
                improved = True
    return current


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
