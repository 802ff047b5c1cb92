"""Decisions from the affinity matrices: groupings per budget, clusterings, auxiliary tasks."""

from __future__ import annotations

from typing import Any

from affinity.auxiliary import rank_auxiliaries
from affinity.grouping import CLUSTERING_METHODS, cluster_tasks, partition_quality
from affinity.grouping.select import top_groupings
from affinity.result import Result
from affinity.taskset import TaskSet


def grouping_entry(result: Result, taskset: TaskSet, k: int) -> dict[str, Any]:
    """The contract's ``groupings`` entry for budget k: the best choice by predicted gain.

    With verification on, ``candidates`` holds the next best choices too, for ``verify``.
    """
    tasks, measure, rule = result.tasks, taskset.driver, taskset.grouping.rule
    n_best = taskset.grouping.candidates if taskset.verify else 1
    selections = top_groupings(result.affinity[measure].matrix, k, n_best=n_best, rule=rule)
    candidates = [{
        "groups": [[tasks[t] for t in g] for g in sel.groups],
        "served_by": {tasks[j]: sel.served_by[j] for j in range(len(tasks))},
        "predicted_gain": {tasks[j]: round(float(sel.task_gain[j]), 6)
                           for j in range(len(tasks))},
        "total_predicted_gain": round(sel.total_gain, 6),
        "method": sel.method,
    } for sel in selections]
    return {"k": k, **candidates[0], "measure": measure, "rule": rule,
            "selected_by": "predicted gain", "candidates": candidates}


def recommend(result: Result, taskset: TaskSet) -> None:
    """Fill ``result.groupings``, ``clusterings`` and ``auxiliary`` from its matrices."""
    measure = taskset.driver
    tasks = result.tasks
    matrix, std = result.affinity[measure].matrix, result.affinity[measure].std
    rule = taskset.grouping.rule
    result.groupings = [grouping_entry(result, taskset, k) for k in taskset.budgets]
    clusterings = []
    for method in CLUSTERING_METHODS:
        for k in ([None] if method == "louvain" else taskset.budgets):
            parts = cluster_tasks(matrix, method, k)
            clusterings.append({"method": method, "k": len(parts),
                                "groups": [[tasks[t] for t in p] for p in parts],
                                **{q: round(v, 6) for q, v in
                                   partition_quality(matrix, parts, rule).items()}})
    result.clusterings = clusterings
    primaries = taskset.auxiliary.primary or tasks
    result.auxiliary = {p: rank_auxiliaries(matrix, std, tasks.index(p), tasks,
                                            taskset.auxiliary.max_aux) for p in primaries}
    result.meta["driving_measure"] = measure
