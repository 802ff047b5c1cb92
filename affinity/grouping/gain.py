"""Predicted gain of a task in a group, from a (T, T) affinity matrix.

TAG's rule: the gain of task j in group g is the mean affinity of g's other members onto j
(0 when j is alone). On the ``pairwise`` matrix this is Standley et al.'s higher-order
approximation: j's gain in g is the mean of its measured gains in the pairs it forms in g.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def membership(groups: Sequence[Sequence[int]], n_tasks: int) -> np.ndarray:
    """Boolean matrix of shape (n_groups, n_tasks): member[g, j] is True when j is in g."""
    member = np.zeros((len(groups), n_tasks), dtype=bool)
    for g, group in enumerate(groups):
        member[g, list(group)] = True
    return member


def group_gains(affinity: np.ndarray, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """Predicted gain of every task in every group.

    affinity : ndarray of shape (n_tasks, n_tasks), row = source i, column = target j
    Returns an ndarray of shape (n_groups, n_tasks), NaN where the task is not in the group.
    """
    affinity = np.asarray(affinity, dtype=float)
    member = membership(groups, len(affinity))
    others = member.astype(float) @ affinity - np.diag(affinity)[None, :]
    count = member.sum(axis=1, keepdims=True) - 1
    gains = np.divide(others, count, out=np.zeros_like(others), where=count > 0)
    return np.where(member, gains, np.nan)
