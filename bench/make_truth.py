"""Regenerate the benchmark's exhaustive ground truth: every subset of each real data set's
tasks trained by the referee (``bench/referee.py``, not the project's trainer) by the set's
recipe, on seeds that no probe, race or confirmation uses (TRUTH_SEEDS). Writes
bench/truth/<name>.npz: ``loss`` of shape (seeds, subsets, tasks) (NaN off-subset),
``subsets`` as bit masks, ``tasks`` and ``seeds``.

    python bench/make_truth.py [NAME ...] [--seeds 16] [--processes 2]

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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from affinity.taskset import TaskSet  # noqa: E402
from bench import referee  # noqa: E402
from bench.ground_truth import TRUTH_DIR  # noqa: E402
from bench.realsets import REALSETS  # noqa: E402

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


def train_subsets(name: str, seed: int) -> np.ndarray:
    """One seed of the truth: (subsets, tasks) validation losses, NaN off-subset."""
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        taskset = REALSETS[name](Path(folder))
        table = referee_table(taskset)
    names = [t.name for t in taskset.tasks]
    subsets = all_subsets(len(names))
    loss = np.full((len(subsets), len(names)), np.nan, np.float32)
    recipe = taskset.training.model_dump()
    for row, subset in enumerate(subsets):
        trained = referee.train(table, [names[t] for t in subset], taskset.model.hidden or [],
                                recipe, seed)
        for t in subset:
            loss[row, t] = trained[names[t]]
    return loss


def make(name: str, seeds: list[int], processes: int) -> Path:
    started = time.perf_counter()
    with ProcessPoolExecutor(processes) as pool:
        losses = list(pool.map(train_subsets, [name] * len(seeds), seeds))
    with tempfile.TemporaryDirectory() as folder:
        tasks = [t.name for t in REALSETS[name](Path(folder)).tasks]
    subsets = all_subsets(len(tasks))
    TRUTH_DIR.mkdir(exist_ok=True)
    path = TRUTH_DIR / f"{name}.npz"
    np.savez_compressed(path, loss=np.stack(losses), tasks=np.array(tasks),
                        seeds=np.array(seeds),
                        subsets=np.array([sum(1 << t for t in s) for s in subsets]))
    print(f"{name}: {len(seeds)} seeds x {len(subsets)} subsets in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    return path


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
