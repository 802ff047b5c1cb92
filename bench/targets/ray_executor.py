"""A 20-task job on the local executor and on the Ray executor (a local Ray on this
machine), and how chunking the 210 subset probes (20 singles + 190 pairs) scales.

    python -m bench.targets.ray_executor [--device cpu] [--num-cpus 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
from sklearn.datasets import load_digits

from affinity.analysis import analyze
from affinity.data import load_dataset
from affinity.executor import LocalExecutor, RayExecutor
from affinity.taskset import TaskSet, parse_taskset


def twenty_tasks(folder: Path) -> TaskSet:
    """Digits with 20 binary tasks: ten one-vs-rest, nine 'label > d', and parity."""
    import pandas as pd

    digits = load_digits()
    frame = pd.DataFrame(digits.data, columns=[f"pixel_{i}" for i in range(64)])
    tasks = []
    for d in range(10):
        frame[f"digit_{d}"] = (digits.target == d).astype(int)
        tasks.append({"name": f"digit_{d}", "type": "binary"})
    for d in range(9):
        frame[f"above_{d}"] = (digits.target > d).astype(int)
        tasks.append({"name": f"above_{d}", "type": "binary"})
    frame["parity"] = digits.target % 2
    tasks.append({"name": "parity", "type": "binary"})
    frame.to_csv(folder / "twenty.csv", index=False)
    return parse_taskset({"name": "digits-20", "data": {"path": str(folder / "twenty.csv"),
                                                        "features": list(frame.columns[:64])},
                          "tasks": tasks, "grouping": {"verify": False}})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        taskset = twenty_tasks(Path(folder))
        data = load_dataset(taskset)
        start = time.perf_counter()
        local = analyze(taskset, data=data, device=args.device, executor=LocalExecutor())
        t_local = time.perf_counter() - start
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
        rows = []
        for size in (210, 105, 53, 27):
            executor = RayExecutor(max_chunk_members=size)
            start = time.perf_counter()
            result = analyze(taskset, data=data, device=args.device, executor=executor)
            seconds = time.perf_counter() - start
            diff = max(float(np.abs(result.affinity[m].matrix - local.affinity[m].matrix).max())
                       for m in local.affinity)
            rows.append((len(executor.last_chunks), size, seconds, diff))
        ray.shutdown()
    print(f"{taskset.name}: 20 tasks, 210 subset probes, recipe {taskset.training.epochs} epochs "
          f"at most (no race); Ray: local, {args.num_cpus} CPUs")
    print(f"{'executor':28} {'chunks':>6} {'members/chunk':>13} {'job time':>9} "
          f"{'Ray/local':>9} {'max |diff|':>10}")
    print(f"{'local (one batched model)':28} {1:6d} {210:13d} {t_local:8.1f}s {1:9.2f} {0:10.1e}")
    for n, size, seconds, diff in rows:
        print(f"{'ray':28} {n:6d} {size:13d} {seconds:8.1f}s {seconds / t_local:9.2f} "
              f"{diff:10.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
