"""Regenerate the benchmark's exhaustive ground truth: every subset of every data set's tasks
trained by its recipe, each network early-stopped on its own validation loss, on seeds that
no probe uses (TRUTH_SEEDS). Writes bench/truth/<name>.npz: ``loss`` of shape
(seeds, subsets, tasks) (NaN off-subset), ``subsets`` as bit masks, ``tasks`` and ``seeds``.

    python bench/make_truth.py [NAME ...] [--seeds 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from affinity.data import load_dataset  # noqa: E402
from affinity.grouping.select import all_subsets  # noqa: E402
from affinity.probes.subsets import run_subsets  # noqa: E402
from bench.datasets import DATASETS  # noqa: E402

TRUTH_DIR = Path(__file__).resolve().parent / "truth"
FIRST_TRUTH_SEED = 1000  # probes and the race use seeds 0, 1, ...; the truth never does


def make(name: str, seeds: list[int]) -> Path:
    with tempfile.TemporaryDirectory() as folder:
        taskset = DATASETS[name](Path(folder))
        data = load_dataset(taskset)
    subsets = all_subsets(data.n_tasks)
    losses = []
    for seed in seeds:
        started = time.perf_counter()
        probe = run_subsets(taskset, data, subsets, seed, torch.device("cpu"), keep_params=False)
        losses.append(probe.val_loss.astype(np.float32))
        print(f"{name}: seed {seed} ({len(subsets)} subsets, {time.perf_counter() - started:.0f} s"
              f", mean epochs {probe.epochs.mean():.1f})", flush=True)
    TRUTH_DIR.mkdir(exist_ok=True)
    path = TRUTH_DIR / f"{name}.npz"
    np.savez_compressed(path, loss=np.stack(losses), tasks=np.array(taskset.task_names),
                        seeds=np.array(seeds),
                        subsets=np.array([sum(1 << t for t in s) for s in subsets]))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.names:
        print(f"wrote {make(name, list(range(FIRST_TRUTH_SEED, FIRST_TRUTH_SEED + args.seeds)))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
