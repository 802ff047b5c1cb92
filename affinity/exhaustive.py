"""Exhaustive ground truth: every non-empty subset of the tasks trained (batched as one model)
and each task's validation loss in each subset; and the scorer of groupings against it."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from affinity.data import Dataset
from affinity.grouping.select import all_subsets, choose_groups
from affinity.probes.subsets import run_subsets
from affinity.progress import Progress, ProgressCallback
from affinity.taskset import InvalidTaskSet, TaskSet

MAX_EXHAUSTIVE_TASKS = 12


@dataclass(frozen=True)
class ExhaustiveTable:
    """loss[s, j]: task j's best validation loss in subset s (mean over seeds), NaN off-subset."""

    tasks: list[str]
    subsets: list[tuple[int, ...]]
    loss: np.ndarray
    std: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"tasks": self.tasks, "subsets": [
            {"tasks": [self.tasks[t] for t in s],
             "loss": {self.tasks[t]: float(self.loss[i, t]) for t in s},
             "std": {self.tasks[t]: None if np.isnan(self.std[i, t]) else float(self.std[i, t])
                     for t in s}}
            for i, s in enumerate(self.subsets)]}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ExhaustiveTable:
        tasks = list(doc["tasks"])
        index = {t: i for i, t in enumerate(tasks)}
        subsets = [tuple(sorted(index[t] for t in s["tasks"])) for s in doc["subsets"]]
        loss = np.full((len(subsets), len(tasks)), np.nan)
        std = np.full_like(loss, np.nan)
        for i, s in enumerate(doc["subsets"]):
            for t, v in s["loss"].items():
                loss[i, index[t]] = v
                spread = s.get("std", {}).get(t)
                std[i, index[t]] = np.nan if spread is None else spread
        return cls(tasks, subsets, loss, std)

    def write(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with (out / "exhaustive.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["subset", *self.tasks])
            for s, row in zip(self.subsets, self.loss, strict=True):
                writer.writerow(["+".join(self.tasks[t] for t in s),
                                 *("" if np.isnan(v) else f"{v:.6g}" for v in row)])
        path = out / "exhaustive.json"
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def read(cls, path: str | Path) -> ExhaustiveTable:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def grouping_loss(self, groups: list[list[str]] | list[tuple[int, ...]]) -> float:
        """Summed loss of each task at its best group; groups by task names or indices."""
        index = {t: i for i, t in enumerate(self.tasks)}
        keys = [tuple(sorted(index[t] if isinstance(t, str) else t for t in g)) for g in groups]
        rows = self.loss[[self.subsets.index(k) for k in keys]]
        if np.isnan(rows).all(axis=0).any():
            missing = [self.tasks[j] for j in np.flatnonzero(np.isnan(rows).all(axis=0))]
            raise ValueError(f"groups leave tasks uncovered: {', '.join(missing)}")
        return float(np.nanmin(rows, axis=0).sum())

    def optimum(self, k: int) -> tuple[list[list[str]], float]:
        """The exhaustive optimum: the k groups with the least summed best-group loss."""
        sel = choose_groups(self.subsets, -self.loss, k)
        return [[self.tasks[t] for t in g] for g in sel.groups], -sel.total_gain

    def regret(self, groups: list[list[str]]) -> float:
        """Relative excess loss of a grouping over the optimum with as many groups."""
        best = self.optimum(len(groups))[1]
        return (self.grouping_loss(groups) - best) / best


def exhaustive(taskset: TaskSet, data: Dataset, device: torch.device,
               progress: ProgressCallback | None = None, seeds: Sequence[int] = range(3),
               ) -> ExhaustiveTable:
    """Train all 2^T - 1 subsets by the recipe (each early-stopped on its own validation loss)
    for each of ``seeds``; T must be at most MAX_EXHAUSTIVE_TASKS."""
    if data.n_tasks > MAX_EXHAUSTIVE_TASKS:
        raise InvalidTaskSet(f"tasks: exhaustive training supports at most "
                             f"{MAX_EXHAUSTIVE_TASKS} tasks; got {data.n_tasks}")
    subsets = all_subsets(data.n_tasks)
    prog = Progress(len(seeds), progress)
    runs = []
    for n, seed in enumerate(seeds):
        prog.enter(f"{len(subsets)} subsets (seed {n + 1}/{len(seeds)})")
        runs.append(run_subsets(taskset, data, subsets, seed, device, keep_params=False,
                                tick=None).val_loss)
        prog.update(n + 1)
    stack = np.stack(runs)
    std = stack.std(axis=0, ddof=1) if len(runs) > 1 else np.full_like(stack[0], np.nan)
    prog.finish()
    return ExhaustiveTable(taskset.task_names, subsets, stack.mean(axis=0), std)
