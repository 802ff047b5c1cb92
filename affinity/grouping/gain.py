"""Predicted gain of a task in a group, from a (T, T) affinity matrix.

One family of rules: the gain of task j in group g is the sum of the affinities of g's other
members onto j, divided by (|g| - 1) ** beta. A task alone gains 0.
- ``sum`` (beta = 0): partners' effects add up.
- ``mean`` (beta = 1, TAG's rule): the mean affinity of g's other members onto j. On the
  ``pairwise`` matrix this is Standley et al.'s higher-order approximation.
- a number beta in between (or beyond): diminishing returns of more partners, fitted to the
  groups of 3+ tasks that were trained (``fit_beta``).
A rule may also be a fitted gain model (``surrogate.py``): anything with
``predict(groups) -> (n_groups, n_tasks)``, which then gives the gains itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class GainModel(Protocol):
    def predict(self, groups: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray: ...


RULES = ("sum", "mean")
Rule = str | float | GainModel
BETAS = np.round(np.arange(0.0, 2.01, 0.1), 2)  # the grid fit_beta searches


def membership(groups: Sequence[Sequence[int]] | np.ndarray, n_tasks: int) -> np.ndarray:
    """Boolean matrix of shape (n_groups, n_tasks): member[g, j] is True when j is in g
    (``groups`` may already be one)."""
    if isinstance(groups, np.ndarray) and groups.dtype == bool:
        return groups
    member = np.zeros((len(groups), n_tasks), dtype=bool)
    for g, group in enumerate(groups):
        member[g, list(group)] = True
    return member


def exponent(rule: Rule) -> float:
    """The beta of a rule: sum 0, mean 1, or the number itself."""
    if isinstance(rule, int | float) and not isinstance(rule, bool):
        return float(rule)
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)} or a number; got {rule!r}")
    return 0.0 if rule == "sum" else 1.0


def group_gains(affinity: np.ndarray, groups: Sequence[Sequence[int]] | np.ndarray,
                rule: Rule = "sum") -> np.ndarray:
    """Predicted gain of every task in every group (``groups``: lists of tasks, or their
    boolean ``membership`` matrix).

    affinity : ndarray of shape (n_tasks, n_tasks), row = source i, column = target j
    Returns an ndarray of shape (n_groups, n_tasks), NaN where the task is not in the group.
    """
    if isinstance(rule, GainModel):
        return rule.predict(groups)
    beta = exponent(rule)
    affinity = np.asarray(affinity, dtype=float)
    member = membership(groups, len(affinity)).astype(float)
    others = member @ affinity - np.diag(affinity)[None, :]
    count = member.sum(axis=1, keepdims=True) - 1
    scale = np.where(count > 0, np.maximum(count, 1) ** beta, 1.0)
    return np.where(member > 0, others / scale, np.nan)


def summed_gains(affinity: np.ndarray, groups: Sequence[Sequence[int]] | np.ndarray,
                 rule: Rule = "sum") -> np.ndarray:
    """Each group's summed predicted gain over its tasks, shape (n_groups,): the row sums of
    ``group_gains``, in closed form for the rules of a beta (the affinities among the
    group's members over (|g| - 1) ** beta)."""
    if isinstance(rule, GainModel):
        return np.nansum(rule.predict(groups), axis=1)
    affinity = np.asarray(affinity, dtype=float)
    member = membership(groups, len(affinity)).astype(float)
    inside = ((member @ affinity) * member).sum(axis=1) - member @ np.diag(affinity)
    count = member.sum(axis=1) - 1
    return inside / np.where(count > 0, np.maximum(count, 1) ** exponent(rule), 1.0)


def fit_beta(pairwise: np.ndarray, groups: Sequence[Sequence[int]],
             gains: np.ndarray) -> float | None:
    """The beta whose rule best predicts measured gains of groups of 3+ tasks from pair gains
    (least squared error over BETAS); None without such a group.

    pairwise : (n_tasks, n_tasks) pair gains; gains : (n_groups, n_tasks) measured gains,
    NaN where the task is not in the group.
    """
    big = [i for i, g in enumerate(groups) if len(g) >= 3]
    if not big:
        return None
    chosen = [groups[i] for i in big]
    truth = np.asarray(gains, dtype=float)[big]
    errors = [np.nanmean((group_gains(pairwise, chosen, float(b)) - truth) ** 2) for b in BETAS]
    return float(BETAS[int(np.nanargmin(errors))])
