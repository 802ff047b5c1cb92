"""A hundred image tasks at the default budget: 5,000 Fashion-MNIST images (Debian's
dataset-fashion-mnist, flattened), 100 distinct unions of 2-4 classes as binary tasks (drawn
by a fixed seed), the built-in MLP, a 20-epoch recipe.

Prints the level the default reached, the verdict, each k's comparison, the wall time, the
time outside training (candidates, selection, comparisons), the peak memory, the training
runs spent against the counted budget and how far the projected total time (what a progress
ETA shows) strayed from the actual one after the first stage. Exits 1 unless every k has an
interval against the better baseline (but a k whose groups are that baseline), the time
outside training is under 30 s, the peak memory under 2 GiB, the spend within the budget and
the ETA within 30%. With ``--ray`` the job runs again on the Ray executor (a local Ray with
``--num-cpus``) and must give the same groupings and verdict. ``--rule`` sets
``grouping.rule``.

    python -m bench.targets.hundred_tasks [--tasks 100] [--rows 5000] [--rule R] [--ray]
"""

from __future__ import annotations

import argparse
import itertools
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from affinity.analysis import analyze
from affinity.data import Dataset, load_dataset
from affinity.executor import Executor, LocalExecutor
from affinity.result import Result
from affinity.taskset import TaskSet, parse_taskset
from affinity.threads import limited_threads
from affinity.verdict import is_the_baseline
from bench.data.sources import MissingData, fashion_class_tasks
from bench.eta import EtaLog
from bench.verdict import verdict

MAX_OUTSIDE_S, MAX_GIB, ETA_TOLERANCE = 30.0, 2.0, 0.30


def unions(n_tasks: int, seed: int = 0) -> list[tuple[int, ...]]:
    """``n_tasks`` distinct sets of 2-4 of the ten classes, drawn by ``seed``."""
    every = [c for r in (2, 3, 4) for c in itertools.combinations(range(10), r)]
    rng = np.random.default_rng(seed)
    return [every[i] for i in sorted(rng.choice(len(every), n_tasks, replace=False))]


def run(taskset: TaskSet, data: Dataset, executor: Executor) -> tuple[Result, float, EtaLog]:
    """The analysis, its wall time and what its ETA showed."""
    eta = EtaLog()
    with limited_threads(None):
        result = analyze(taskset, data=data, device="cpu", executor=executor, progress=eta)
    return result, time.perf_counter() - eta.started, eta


def answer(result: Result) -> list:
    return [(e.k, e.kind, e.groups, e.best_groups) for e in result.groupings] + [result.verdict]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--ray", action="store_true")
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--rule", choices=["sum", "mean"], help="grouping.rule (default: the "
                        "task set's default)")
    args = parser.parse_args()
    names = {f"c{''.join(map(str, c))}": list(c) for c in unions(args.tasks)}
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = fashion_class_tasks(args.rows, names, Path(folder), flat=True)
        except MissingData as error:
            print(error)
            return 1
        taskset = parse_taskset({"name": "fashion-100", "data": {"path": str(path)},
                                 "tasks": [{"name": n, "type": "binary"} for n in names],
                                 "training": {"epochs": 20},
                                 "grouping": {"rule": args.rule} if args.rule else {}})
        data = load_dataset(taskset)
    print(f"{len(data.x_train)} training images, {args.tasks} tasks, the MLP, 20 epochs, "
          "the default budget", flush=True)
    result, seconds, eta = run(taskset, data, LocalExecutor())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    cost = result.meta.cost
    training = sum(s["seconds"] for s in cost.stages)
    outside = seconds - training
    print(f"\n{result.verdict}\n")
    for e in result.groupings:
        interval = f"{100 * e.interval[0]:+.2f}% to {100 * e.interval[1]:+.2f}%" \
            if e.interval else "none"
        print(f"k={e.k} ({e.evidence}, {e.kind}): against {e.baseline}: "
              f"{100 * (e.improvement or 0):+.2f}% ({interval}); groups of "
              f"{', '.join(str(len(g)) for g in e.best_groups or e.groups)} tasks")
    for s in cost.stages:
        print(f"  {s['stage']:52} {s['networks']:4d} networks {s['seconds']:6.1f} s "
              f"{s['training_runs']:6.1f} runs (planned {s.get('planned_training_runs', '-')})")
    spread, readings = eta.spread(seconds)
    missed = []
    compared = [e for e in result.groupings if not is_the_baseline(e)]
    checks = [
        ("every k compared with the better baseline, with an interval",
         all(e.interval is not None for e in compared),
         f"{sum(e.interval is not None for e in compared)} of {len(compared)} (k = "
         f"{', '.join(str(e.k) for e in result.groupings if e not in compared) or 'none'}: "
         "the baseline itself)"),
        (f"outside training under {MAX_OUTSIDE_S:.0f} s", outside < MAX_OUTSIDE_S,
         f"{outside:.1f} s of {seconds:.0f} s"),
        (f"peak memory under {MAX_GIB} GiB", peak < MAX_GIB, f"{peak:.2f} GiB"),
        ("within the default's counted compute", cost.training_runs <= cost.budget + 1e-6,
         f"{cost.training_runs:.1f} of {cost.budget:.1f} training runs"),
        (f"projected total within {100 * ETA_TOLERANCE:.0f}% after the first stage",
         max(abs(spread[0]), abs(spread[1])) <= ETA_TOLERANCE,
         f"{100 * spread[0]:+.0f}% to {100 * spread[1]:+.0f}% ({readings} readings)")]
    if args.ray:
        import ray

        from affinity.executor import RayExecutor

        ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
        print("\nagain on the Ray executor", flush=True)
        on_ray, ray_seconds, _ = run(taskset, data, RayExecutor())
        ray.shutdown()
        checks.append(("the Ray executor gives the same groupings and verdict",
                       answer(on_ray) == answer(result),
                       f"Ray {ray_seconds:.0f} s, local {seconds:.0f} s"))
    print("\n| target | met | figure |\n|---|---|---|")
    for name, ok, figure in checks:
        print(f"| {name} | {'yes' if ok else 'MISSED'} | {figure} |")
        if not ok:
            missed.append(name)
    return verdict(missed)


if __name__ == "__main__":
    sys.exit(main())
