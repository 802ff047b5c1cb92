"""Verification: train the recommended groups and auxiliary sets, and measure the gains.

All groups named by the groupings and auxiliary sets, plus every single task and the
all-in-one group, are trained as one batched subset probe per seed; each task's best
validation loss in its serving group is compared with single-task and all-in-one training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from affinity.data import Dataset
from affinity.probes.subsets import run_subsets
from affinity.result import Result
from affinity.taskset import TaskSet


def verification_members(result: Result) -> list[tuple[int, ...]]:
    index = {t: i for i, t in enumerate(result.tasks)}
    members = {(t,) for t in range(len(result.tasks))} | {tuple(range(len(result.tasks)))}
    for entry in result.groupings:
        members |= {tuple(sorted(index[t] for t in g)) for g in entry["groups"]}
    for primary, ranked in result.auxiliary.items():
        members.add(tuple(sorted([index[primary]] + [index[c["task"]] for c in ranked
                                                     if c["selected"]])))
    return sorted(members, key=lambda m: (len(m), m))


def verify(result: Result, taskset: TaskSet, data: Dataset, device: torch.device,
           tick: Callable[[], None] | None = None) -> None:
    """Add measured losses to ``result.groupings`` and ``result.verification``."""
    members = verification_members(result)
    losses = np.mean([run_subsets(taskset, data, members, seed, device, tick=tick).val_loss
                      for seed in range(taskset.probe.seeds)], axis=0)
    tasks, n = result.tasks, len(result.tasks)
    index = {t: i for i, t in enumerate(tasks)}

    def loss(group: list[str], task: int) -> float:
        """Mean best validation loss of ``task`` when trained with the named group."""
        return float(losses[members.index(tuple(sorted(index[t] for t in group))), task])

    single = [loss([t], j) for j, t in enumerate(tasks)]
    together = [loss(tasks, j) for j in range(n)]
    for entry in result.groupings:
        measured: dict[str, Any] = {}
        for j, t in enumerate(tasks):
            in_group = loss(entry["groups"][entry["served_by"][t]], j)
            measured[t] = {"group_loss": round(in_group, 6), "single_loss": round(single[j], 6),
                           "all_in_one_loss": round(together[j], 6),
                           "gain": round((single[j] - in_group) / max(single[j], 1e-12), 6)}
        entry["measured"] = measured
        entry["measured_total_loss"] = round(sum(m["group_loss"] for m in measured.values()), 6)
    aux = {}
    for primary, ranked in result.auxiliary.items():
        p = index[primary]
        chosen = [c["task"] for c in ranked if c["selected"]]
        with_aux = loss([primary, *chosen], p)
        aux[primary] = {"auxiliaries": chosen, "loss": round(with_aux, 6),
                        "single_loss": round(single[p], 6),
                        "gain": round((single[p] - with_aux) / max(single[p], 1e-12), 6)}
    result.verification = {
        "seeds": taskset.probe.seeds,
        "single_total_loss": round(sum(single), 6),
        "all_in_one_total_loss": round(sum(together), 6),
        "auxiliary": aux,
    }
