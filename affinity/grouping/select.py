"""Choose k (possibly overlapping) groups that maximise the tasks' summed predicted gain.

Each task is served by the chosen group in which its predicted gain is highest; every task
must be served. Solved as an integer program with ``scipy.optimize.milp`` (HiGHS) over a
pool of candidate groups: every non-empty subset for up to ``max_exact_tasks`` tasks (the
exact optimum), otherwise a pruned pool (singles, pairs, the whole set, and groups grown
greedily from each task's best pair) whose optimum is a heuristic answer.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from affinity.grouping.gain import group_gains

MAX_EXACT_TASKS = 12


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


def all_subsets(n_tasks: int) -> list[tuple[int, ...]]:
    return [s for r in range(1, n_tasks + 1) for s in itertools.combinations(range(n_tasks), r)]


def pruned_pool(affinity: np.ndarray, rule: str) -> list[tuple[int, ...]]:
    """Singles, pairs, the whole set, and for each pair the groups met while growing it
    greedily (adding the task that most raises the group's summed gain, while it rises)."""
    n = len(affinity)
    pool = {(t,) for t in range(n)} | set(itertools.combinations(range(n), 2))
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


def select_groups(affinity: np.ndarray, k: int, *, rule: str = "compound",
                  max_exact_tasks: int = MAX_EXACT_TASKS) -> Selection:
    """The best choice of ``k`` groups under ``rule`` (see ``gain.py``) on ``affinity``.

    affinity : ndarray of shape (n_tasks, n_tasks), row = source i, column = target j
    """
    affinity = np.asarray(affinity, dtype=float)
    n = len(affinity)
    if affinity.shape != (n, n) or not np.isfinite(affinity).all():
        raise ValueError(f"affinity must be a finite square matrix; got shape {affinity.shape}")
    exact = n <= max_exact_tasks
    pool = all_subsets(n) if exact else pruned_pool(affinity, rule)
    return choose_groups(pool, group_gains(affinity, pool, rule), k,
                         method="exact" if exact else "pruned")


def choose_groups(pool: list[tuple[int, ...]], gains: np.ndarray, k: int, *,
                  method: str = "exact") -> Selection:
    """Choose k groups of ``pool`` maximising the summed gain of each task at its best group.

    gains : ndarray of shape (len(pool), n_tasks), NaN where the task is not in the group.
    """
    n_groups, n = gains.shape
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of tasks ({n}); got {k}")
    pairs = np.argwhere(~np.isnan(gains))  # (group, task) where the task is in the group
    n_pairs = len(pairs)
    # variables: x_g (group chosen), then y_gj (task j served by group g)
    cost = np.concatenate([np.zeros(n_groups), -gains[pairs[:, 0], pairs[:, 1]]])
    rows = np.arange(n_pairs)
    link = coo_array((np.concatenate([-np.ones(n_pairs), np.ones(n_pairs)]),
                      (np.concatenate([rows, rows]),
                       np.concatenate([pairs[:, 0], n_groups + rows]))),
                     shape=(n_pairs, n_groups + n_pairs))
    serve = coo_array((np.ones(n_pairs), (pairs[:, 1], n_groups + rows)),
                      shape=(n, n_groups + n_pairs))
    count = coo_array((np.ones(n_groups), (np.zeros(n_groups, dtype=int), np.arange(n_groups))),
                      shape=(1, n_groups + n_pairs))
    res = milp(cost, integrality=np.ones(n_groups + n_pairs), bounds=Bounds(0, 1),
               constraints=[LinearConstraint(link, -np.inf, 0), LinearConstraint(serve, 1, 1),
                            LinearConstraint(count, k, k)])
    if res.x is None:
        raise RuntimeError(f"grouping solver failed: {res.message}")
    chosen = [g for g in range(n_groups) if res.x[g] > 0.5]
    served = {int(pairs[p, 1]): int(pairs[p, 0]) for p in range(n_pairs)
              if res.x[n_groups + p] > 0.5}
    groups = [pool[g] for g in chosen]
    served_by = [chosen.index(served[j]) for j in range(n)]
    task_gain = np.array([gains[served[j], j] for j in range(n)])
    return Selection(groups, served_by, task_gain, method)


class TaskGrouper:
    """scikit-learn style wrapper of ``select_groups``.

    Parameters: n_groups (k), rule (compound or mean), max_exact_tasks (largest T solved
    over every subset). Attributes after ``fit``: groups_, served_by_, task_gain_,
    total_gain_, method_.
    """

    def __init__(self, n_groups: int = 2, *, rule: str = "compound",
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
