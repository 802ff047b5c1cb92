"""A per-task surrogate of group gains, fitted to the groups that were trained.

For each target task j (Li et al. 2023, "Identification of negative transfers in multitask
learning using surrogate models": one linear model per task over which tasks share its
network), the gain of j in a group g of two or more tasks is

    gain_j(g) = sum of w_ij over g's other members i  +  c_j * (|g| - 2)

and 0 alone; a pair, which was trained, keeps its measured gains (the fitted w_ij serve the
groups that were not). ``w_ij`` starts from the pair gain of i onto j and ``c_j`` from the
slope shared by every task; both are ridge
estimates pulled towards those starting points, so a task that was trained in few larger
groups keeps close to its pairs and the shared slope. The slope is what pair gains miss:
partners' gains do not add up (on the benchmark's truths the best exponent of the rule
family in ``gain.py`` ranged from 0.3 to 2.0), and a sampled group of 3+ tasks measures by
how much.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from affinity.grouping.gain import group_gains, membership

PRIOR_WEIGHT = 1.0
"""Ridge precision of each w_ij and c_j around its starting point: the weight of one
measured gain (gains are relative, about 0.01 to 0.3)."""


@dataclass(frozen=True)
class Surrogate:
    """Fitted surrogate: ``weights[i, j]`` (w_ij; diagonal 0), ``slopes[j]`` (c_j) and the
    measured ``pairs`` gains it was fitted to; a gain rule of its own (``gain.group_gains``
    asks it to ``predict``)."""

    weights: np.ndarray
    slopes: np.ndarray
    pairs: np.ndarray

    def predict(self, groups: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
        """Predicted gain of every task in every group, shape (n_groups, n_tasks), NaN where
        the task is not in the group; a pair's are its measured gains."""
        member = membership(groups, len(self.slopes)).astype(float)
        size = member.sum(axis=1, keepdims=True)
        gains = member @ self.weights + (size - 2) * self.slopes[None, :]
        measured = member @ self.pairs  # in a pair: the partner's pair gain onto each member
        gains = np.where(size == 2, measured, gains)
        return np.where(member > 0, np.where(size > 1, gains, 0.0), np.nan)


def shared_slope(pairwise: np.ndarray, groups: Sequence[Sequence[int]],
                 gains: np.ndarray) -> float:
    """The least-squares slope c of (measured gain - summed pair gains) on (|g| - 2) over
    every member of every trained group of 3+ tasks (0 without such a group)."""
    big = [i for i, g in enumerate(groups) if len(g) >= 3]
    if not big:
        return 0.0
    chosen = [groups[i] for i in big]
    residual = np.asarray(gains, dtype=float)[big] - group_gains(pairwise, chosen, "sum")
    size = np.array([len(g) - 2.0 for g in chosen])[:, None] * np.ones_like(residual)
    ok = ~np.isnan(residual)
    return float(np.dot(size[ok], residual[ok]) / max(np.dot(size[ok], size[ok]), 1e-12))


def fit_surrogate(pairwise: np.ndarray, groups: Sequence[Sequence[int]], gains: np.ndarray,
                  prior_weight: float = PRIOR_WEIGHT) -> Surrogate:
    """Fit the surrogate to pair gains and the measured gains of trained larger groups.

    pairwise : (n_tasks, n_tasks) pair gains, row = source i, column = target j
    groups, gains : trained groups of 3+ tasks and each member's measured gain,
        shape (n_groups, n_tasks), NaN where the task is not in the group
    """
    pairwise = np.asarray(pairwise, dtype=float)
    n = len(pairwise)
    c0 = shared_slope(pairwise, groups, gains)
    big = [i for i, g in enumerate(groups) if len(g) >= 3]
    member = membership([groups[i] for i in big], n).astype(float)
    measured = np.asarray(gains, dtype=float).reshape(-1, n)[big]
    weights, slopes = np.zeros((n, n)), np.full(n, c0)
    for j in range(n):
        rows = member[:, j] > 0
        others = [i for i in range(n) if i != j]
        # design: one row per pair (i, j), one per trained larger group holding j
        x_pairs = np.hstack([np.eye(n - 1), np.zeros((n - 1, 1))])
        x_big = np.hstack([member[rows][:, others], member[rows].sum(1, keepdims=True) - 2])
        x = np.vstack([x_pairs, x_big])
        y = np.concatenate([pairwise[others, j], measured[rows, j]])
        start = np.append(pairwise[others, j], c0)
        solution = np.linalg.solve(x.T @ x + prior_weight * np.eye(n),
                                   x.T @ y + prior_weight * start)
        weights[others, j], slopes[j] = solution[:-1], solution[-1]
    return Surrogate(weights, slopes, np.where(np.eye(n, dtype=bool), 0.0, pairwise))
