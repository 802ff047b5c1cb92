"""Decisions from the affinity matrices: groupings per budget, clusterings, auxiliary tasks."""

from __future__ import annotations

from typing import Any

from affinity.auxiliary import rank_auxiliaries
from affinity.grouping import CLUSTERING_METHODS, cluster_tasks, partition_quality, select_groups
from affinity.result import Result
from affinity.taskset import TaskSet


def grouping_entry(result: Result, measure: str, rule: str, k: int) -> dict[str, Any]:
    """The contract's ``groupings`` entry for budget k, with the predicted gains."""
    tasks = result.tasks
    sel = select_groups(result.affinity[measure].matrix, k, rule=rule)
    return {
        "k": k,
        "groups": [[tasks[t] for t in g] for g in sel.groups],
        "served_by": {tasks[j]: sel.served_by[j] for j in range(len(tasks))},
        "predicted_gain": {tasks[j]: round(float(sel.task_gain[j]), 6)
                           for j in range(len(tasks))},
        "total_predicted_gain": round(sel.total_gain, 6),
        "measure": measure,
        "rule": rule,
        "method": sel.method,
    }


def recommend(result: Result, taskset: TaskSet) -> None:
    """Fill ``result.groupings``, ``clusterings`` and ``auxiliary`` from its matrices."""
    measure = taskset.driver
    tasks = result.tasks
    matrix, std = result.affinity[measure].matrix, result.affinity[measure].std
    rule = taskset.grouping.rule
    result.groupings = [grouping_entry(result, measure, rule, k) for k in taskset.budgets]
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
