"""Verification: train the recommended groups and auxiliary sets, and measure the gains.

The groups of every candidate grouping (the best few by predicted gain, per k) and of every
auxiliary set, plus every single task and the all-in-one group, are trained as one batched
subset probe per seed. The seeds are the probes' own (common random numbers: every network
of a seed starts from the same weights and sees the same batches), so the measurements are
comparable with the single-task and pair probes. Each candidate is scored by its tasks' best
validation losses; the best-scoring candidate is recommended, and its tasks' losses are
compared with single-task and all-in-one training.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from affinity.data import Dataset
from affinity.executor import Executor
from affinity.result import Result
from affinity.taskset import TaskSet


def verification_members(result: Result) -> list[tuple[int, ...]]:
    """Every group of every candidate grouping and auxiliary set, singles and all-in-one."""
    index = {t: i for i, t in enumerate(result.tasks)}
    members = {(t,) for t in range(len(result.tasks))} | {tuple(range(len(result.tasks)))}
    for entry in result.groupings:
        for candidate in entry["candidates"]:
            members |= {tuple(sorted(index[t] for t in g)) for g in candidate["groups"]}
    for primary, ranked in result.auxiliary.items():
        members.add(tuple(sorted([index[primary]] + [index[c["task"]] for c in ranked
                                                     if c["selected"]])))
    return sorted(members, key=lambda m: (len(m), m))


def verify(result: Result, taskset: TaskSet, data: Dataset, device: torch.device,
           executor: Executor, tick: Callable[..., None] | None = None) -> None:
    """Train every candidate's groups; recommend, per k, the candidate with the least measured
    total validation loss (each task at its best group); add the measurements to the result."""
    members = verification_members(result)
    seeds = range(taskset.probe.seeds)
    losses = np.mean([executor.subsets(taskset, data, members, seed, device, tick=tick)
                      .val_loss for seed in seeds], axis=0)
    tasks = result.tasks
    index = {t: i for i, t in enumerate(tasks)}
    row = {m: i for i, m in enumerate(members)}

    def loss(group: list[str], task: str) -> float:
        """Mean best validation loss of ``task`` when trained with the named group."""
        return float(losses[row[tuple(sorted(index[t] for t in group))], index[task]])

    def gain(task: str, value: float) -> float:
        """Relative drop of ``task``'s loss from training it alone to ``value``."""
        return round((single[task] - value) / max(single[task], 1e-12), 6)

    single = {t: loss([t], t) for t in tasks}
    together = {t: loss(tasks, t) for t in tasks}
    for entry in result.groupings:
        for candidate in entry["candidates"]:
            in_groups = {t: [loss(g, t) if t in g else np.inf for g in candidate["groups"]]
                         for t in tasks}
            candidate["served_by"] = {t: int(np.argmin(v)) for t, v in in_groups.items()}
            candidate["measured"] = {
                t: {"group_loss": round(min(v), 6), "single_loss": round(single[t], 6),
                    "all_in_one_loss": round(together[t], 6),
                    "gain": gain(t, min(v))}
                for t, v in in_groups.items()}
            candidate["measured_total_loss"] = round(sum(min(v) for v in in_groups.values()), 6)
        best = min(entry["candidates"], key=lambda c: c["measured_total_loss"])
        entry.update(best)
        entry["selected_by"] = (f"measured validation loss, best of {len(entry['candidates'])} "
                                "candidates by predicted gain")
    aux = {}
    for primary, ranked in result.auxiliary.items():
        chosen = [c["task"] for c in ranked if c["selected"]]
        with_aux = loss([primary, *chosen], primary)
        aux[primary] = {"auxiliaries": chosen, "loss": round(with_aux, 6),
                        "single_loss": round(single[primary], 6),
                        "gain": gain(primary, with_aux)}
    result.verification = {
        "seeds": list(seeds),
        "single_total_loss": round(sum(single.values()), 6),
        "all_in_one_total_loss": round(sum(together.values()), 6),
        "auxiliary": aux,
    }
