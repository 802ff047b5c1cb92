"""Regenerate the benchmark's ground truth: every subset of each real data set's tasks (of a
LARGE set: every single task, pair and the all-in-one network; the benchmark adds what its
recommendations need, ``extend``) trained by the referee (``bench/truths/referee.py``, not the
project's trainer) by the set's recipe, on seeds that no probe, race or confirmation uses.
Writes bench/truths/data/<name>.npz: ``loss`` of shape (seeds, subsets, tasks) (NaN off-subset),
``subsets`` as bit masks, ``tasks`` and ``seeds``.

    python -m bench.truths.make [NAME ...] [--seeds 16] [--processes 2]

One network at a time, one thread each, ``--processes`` at once.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from affinity.taskset import TaskSet
from bench.data.realsets import LARGE, REALSETS
from bench.truths import referee
from bench.truths.ground_truth import TRUTH_DIR

FIRST_TRUTH_SEED = 1000  # probes, races and confirmations use seeds below 1000


def referee_table(taskset: TaskSet) -> referee.Table:
    """The referee's view of a task set's CSV, from the task set's documented fields."""
    assert taskset.data.path and taskset.data.features and taskset.data.split_column
    frame = pd.read_csv(taskset.data.path)
    return referee.prepare(
        frame, {t.name: t.type for t in taskset.tasks}, taskset.data.features,
        (frame[taskset.data.split_column] == "val").to_numpy(),
        taskset.data.standardize.features, taskset.data.standardize.targets,
        {t.name: t.column or t.name for t in taskset.tasks})


def all_subsets(n: int) -> list[tuple[int, ...]]:
    return [s for m in range(1, n + 1) for s in itertools.combinations(range(n), m)]


def truth_subsets(name: str, n: int) -> list[tuple[int, ...]]:
    """Every subset; for a LARGE set every single task, pair and the all-in-one network."""
    if name not in LARGE:
        return all_subsets(n)
    return [s for m in (1, 2) for s in itertools.combinations(range(n), m)] + [tuple(range(n))]


def train_subsets(name: str, seed: int, subsets: list[tuple[int, ...]]) -> np.ndarray:
    """One seed of the truth: (subsets, tasks) validation losses, NaN off-subset."""
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        taskset = REALSETS[name](Path(folder))
        table = referee_table(taskset)
    names = [t.name for t in taskset.tasks]
    loss = np.full((len(subsets), len(names)), np.nan, np.float32)
    recipe = taskset.training.model_dump()
    for row, subset in enumerate(subsets):
        trained = referee.train(table, [names[t] for t in subset], taskset.model.hidden or [],
                                recipe, seed)
        for t in subset:
            loss[row, t] = trained[names[t]]
    return loss


def _train(name: str, seeds: list[int], subsets: list[tuple[int, ...]],
           processes: int) -> np.ndarray:
    """(seeds, subsets, tasks) losses, the seeds shared among ``processes``."""
    with ProcessPoolExecutor(processes) as pool:
        return np.stack(list(pool.map(train_subsets, [name] * len(seeds), seeds,
                                      [subsets] * len(seeds))))


def _save(name: str, loss: np.ndarray, tasks: list[str], seeds: list[int],
          subsets: list[tuple[int, ...]]) -> Path:
    TRUTH_DIR.mkdir(exist_ok=True)
    path = TRUTH_DIR / f"{name}.npz"
    np.savez_compressed(path, loss=loss, tasks=np.array(tasks), seeds=np.array(seeds),
                        subsets=np.array([sum(1 << t for t in s) for s in subsets]))
    return path


def make(name: str, seeds: list[int], processes: int) -> Path:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        tasks = [t.name for t in REALSETS[name](Path(folder)).tasks]
    subsets = truth_subsets(name, len(tasks))
    path = _save(name, _train(name, seeds, subsets, processes), tasks, seeds, subsets)
    print(f"{name}: {len(seeds)} seeds x {len(subsets)} subsets in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    return path


def extend(name: str, groups: list[tuple[int, ...]], processes: int = 2) -> list[str]:
    """Add to a set's truth the ``groups`` it lacks, trained by the referee on its seeds
    (a LARGE set's recommendations); the groups added, as text."""
    doc = np.load(TRUTH_DIR / f"{name}.npz")
    tasks, seeds = [str(t) for t in doc["tasks"]], [int(s) for s in doc["seeds"]]
    subsets = [tuple(t for t in range(len(tasks)) if m >> t & 1) for m in doc["subsets"]]
    new = sorted({tuple(sorted(g)) for g in groups} - set(subsets))
    if new:
        loss = np.concatenate([doc["loss"], _train(name, seeds, new, processes)], axis=1)
        _save(name, loss, tasks, seeds, subsets + new)
    return [", ".join(tasks[t] for t in g) for g in new]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(REALSETS))
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    for name in args.names:
        seeds = list(range(FIRST_TRUTH_SEED, FIRST_TRUTH_SEED + args.seeds))
        print(f"wrote {make(name, seeds, args.processes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
