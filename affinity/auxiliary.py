"""Auxiliary-task selection: which other tasks to train beside a primary task."""

from __future__ import annotations

from typing import Any

import numpy as np


def rank_auxiliaries(matrix: np.ndarray, std: np.ndarray | None, primary: int,
                     tasks: list[str], max_aux: int) -> list[dict[str, Any]]:
    """Candidates for ``primary``, best first, by their affinity onto it (column ``primary``).

    matrix, std : ndarrays of shape (n_tasks, n_tasks), mean and std over seeds (std None
    from one seed). Each entry: task, score (affinity onto the primary), std (None from one
    seed), harmful (score < 0: negative transfer expected) and selected. The selected set is
    greedy: candidates in rank order while their affinity is positive and larger than its std
    over seeds, at most ``max_aux``.
    """
    column = np.asarray(matrix, dtype=float)[:, primary]
    spread = np.zeros(len(column)) if std is None else np.asarray(std, dtype=float)[:, primary]
    order = sorted((i for i in range(len(tasks)) if i != primary),
                   key=lambda i: (-column[i], tasks[i]))
    ranked, chosen = [], 0
    for i in order:
        pick = chosen < max_aux and column[i] > 0 and column[i] > spread[i]
        chosen += pick
        ranked.append({"task": tasks[i], "score": round(float(column[i]), 6),
                       "std": None if std is None else round(float(spread[i]), 6),
                       "harmful": bool(column[i] < 0),
                       "selected": bool(pick)})
    return ranked
