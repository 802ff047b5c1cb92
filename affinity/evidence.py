"""Groupings from evidence a user already has (``affinity group``): a T x T affinity matrix,
or a table of trained subsets with each member's gain (or loss) in each.

A subset table needs every single task and every pair; larger subsets are optional. Pair
gains give the affinity matrix; with trained larger subsets, a per-task surrogate fitted to
them and the pairs predicts every other group (``grouping/surrogate.py``), without them the
pair gains under the rule of ``DEFAULT_RULE``; groups that were trained keep their measured
gains, and the same selection as ``affinity run`` chooses k groups.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affinity.errors import InvalidInput
from affinity.grouping.gain import Rule, group_gains
from affinity.grouping.select import all_subsets, choose_groups, pruned_pool
from affinity.grouping.surrogate import Surrogate, fit_surrogate

MAX_EXACT_EVIDENCE_TASKS = 12
"""Up to this many tasks the selection runs over every subset: one integer program per k
(about 4 s over the 4,095 subsets of 12 tasks), where the race solves one per predictor and
k and stops at ``select.MAX_EXACT_TASKS``. On the benchmark's 12-task truth the pruned pool
scored regret 0.57 where every subset gave 0.24 (``bench/studies/evidence.py``)."""

DEFAULT_RULE: Rule = 0.5
"""Beta for a bare matrix or a table without larger subsets: between sum (0) and mean (1);
the best beta on the benchmark's five truths was 0.3 to 2.0 (CHANGELOG.md)."""


class InvalidEvidence(InvalidInput):
    """The evidence (or an option given with it) is invalid; the message names what."""

    what = "evidence"


@dataclass(frozen=True)
class Evidence:
    """tasks; matrix (T, T) row = source, column = target; measured gains of trained groups
    (``gains[g, j]``, NaN where j is not in ``groups[g]``) when the input was a subset table."""

    tasks: list[str]
    matrix: np.ndarray
    groups: list[tuple[int, ...]]
    gains: np.ndarray

    def surrogate(self) -> Surrogate | None:
        """The per-task surrogate fitted to the pairs and the trained larger subsets."""
        return fit_surrogate(self.matrix, self.groups, self.gains) if self.groups else None


def read_evidence(source: str | Path | pd.DataFrame, *, loss: bool = False) -> Evidence:
    """Read an affinity matrix or a subset table (CSV path or frame); see the module doc."""
    if isinstance(source, pd.DataFrame):
        frame = source
    else:
        try:
            frame = pd.read_csv(source)
        except (OSError, ValueError) as exc:
            raise InvalidEvidence(f"evidence: cannot read {str(source)!r}: {exc}") from None
    first = frame.columns[0]
    labels = frame[first].astype(str).tolist()
    if not pd.api.types.is_numeric_dtype(frame[first]) and \
            sorted(labels) == sorted(map(str, frame.columns[1:])):
        return _matrix(frame.set_index(first), loss)
    return _subset_table(frame, loss)


def _numeric(frame: pd.DataFrame) -> np.ndarray:
    try:
        return frame.apply(pd.to_numeric, errors="raise").to_numpy(dtype=float)
    except (ValueError, TypeError) as exc:
        raise InvalidEvidence(f"evidence: every cell must be a number or empty ({exc})") from None


def _matrix(frame: pd.DataFrame, loss: bool) -> Evidence:
    if loss:
        raise InvalidEvidence("--loss: applies to a subset table, not to an affinity matrix")
    frame = frame.set_axis(frame.index.astype(str)).set_axis(frame.columns.astype(str), axis=1)
    tasks = list(frame.columns)
    matrix = _numeric(frame.reindex(tasks)[tasks])
    if not np.isfinite(matrix[~np.eye(len(tasks), dtype=bool)]).all():
        raise InvalidEvidence("evidence: the affinity matrix has empty or non-finite cells")
    return Evidence(tasks, np.nan_to_num(matrix), [], np.zeros((0, len(tasks))))


def _subset_table(frame: pd.DataFrame, loss: bool) -> Evidence:
    tasks = [str(c) for c in frame.columns]
    values = _numeric(frame)
    n = len(tasks)
    if n < 2:
        raise InvalidEvidence("evidence: a subset table needs at least 2 task columns")
    rows: dict[tuple[int, ...], np.ndarray] = {}
    for r, row in enumerate(values):
        group = tuple(np.flatnonzero(~np.isnan(row)).tolist())
        if not group:
            raise InvalidEvidence(f"evidence: row {r + 1} has no value (names no subset)")
        if group in rows:
            raise InvalidEvidence(f"evidence: row {r + 1} repeats the subset "
                                  f"{[tasks[t] for t in group]}")
        rows[group] = row
    needed = [(t,) for t in range(n)] + list(itertools.combinations(range(n), 2))
    missing = [g for g in needed if g not in rows]
    if missing:
        names = ", ".join("+".join(tasks[t] for t in g) for g in missing[:5])
        raise InvalidEvidence(f"evidence: every single task and pair is needed; missing {names}"
                              + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    if loss:
        single = np.array([rows[(t,)][t] for t in range(n)])
        if (single <= 0).any():
            raise InvalidEvidence("evidence: single-task losses must be positive")
        rows = {g: (single - v) / single for g, v in rows.items()}
    matrix = np.zeros((n, n))
    for i, j in itertools.permutations(range(n), 2):
        matrix[i, j] = rows[tuple(sorted((i, j)))][j]
    groups = [g for g in rows if len(g) >= 3]
    gains = np.array([rows[g] for g in groups]).reshape(len(groups), n)
    return Evidence(tasks, matrix, groups, gains)


def group_evidence(evidence: Evidence, ks: list[int], *,
                   rule: Rule | None = None) -> list[dict[str, Any]]:
    """The best choice of k groups for each k: measured gains where a group was trained,
    predicted ones elsewhere (by ``rule``; default: the surrogate when larger subsets were
    trained, else ``DEFAULT_RULE``)."""
    n = len(evidence.tasks)
    for k in ks:
        if not 1 <= k <= n:
            raise InvalidEvidence(f"--k: k={k} must be between 1 and the number of tasks ({n})")
    if rule is None:
        rule = evidence.surrogate() or DEFAULT_RULE
    exact = n <= MAX_EXACT_EVIDENCE_TASKS
    pool = all_subsets(n) if exact else sorted(set(pruned_pool(evidence.matrix, rule))
                                               | set(evidence.groups),
                                               key=lambda g: (len(g), g))
    gains = group_gains(evidence.matrix, pool, rule)
    measured = {g: i for i, g in enumerate(evidence.groups)}
    for p, g in enumerate(pool):
        if g in measured:
            gains[p] = np.where(np.isnan(gains[p]), np.nan, evidence.gains[measured[g]])
    name = "surrogate" if isinstance(rule, Surrogate) else str(rule)
    out = []
    for k in ks:
        sel = choose_groups([tuple(range(n))] if k == 1 else pool,
                            gains[[pool.index(tuple(range(n)))]] if k == 1 else gains, k,
                            method="exact" if exact or k == 1 else "pruned").ordered()
        out.append({"k": k, "groups": [[evidence.tasks[t] for t in g] for g in sel.groups],
                    "served_by": {evidence.tasks[j]: sel.served_by[j] for j in range(n)},
                    "predicted_gain": {evidence.tasks[j]: round(float(sel.task_gain[j]), 6)
                                       for j in range(n)},
                    "total_predicted_gain": round(sel.total_gain, 6), "method": sel.method,
                    "rule": name, "measured_groups": len(evidence.groups)})
    return out


def group(source: str | Path | pd.DataFrame, ks: list[int], *, loss: bool = False,
          rule: Rule | None = None) -> list[dict[str, Any]]:
    """Python twin of ``affinity group``: read the evidence, return a groupings entry per k."""
    return group_evidence(read_evidence(source, loss=loss), ks, rule=rule)
