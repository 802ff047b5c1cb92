"""An image-sized run: Fashion-MNIST (Debian's dataset-fashion-mnist) with eight binary
attribute tasks, the built-in cnn backbone at its defaults, the default budget. Prints wall
time, peak memory, training runs spent against the budget and the memory plan; exits 1 when
the run spends more than 1.25 times its budget (in wall-time run-equivalents), when the
projected total time (what a progress ETA shows) strays more than 30% from the actual one
after the first stage, when the run takes more than 45 minutes or 16 GiB, or (at the default
budget) when it gives the one-run level's groupings without naming each k predicted. Threads:
as the worker chooses them (all cores but one).

    python -m bench.targets.fashion [--rows 6000] [--budget RUNS] [--backbone cnn]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from affinity.analysis import analyze
from affinity.data import load_dataset
from affinity.executor import LocalExecutor
from affinity.memory import available_bytes, plan
from affinity.taskset import parse_taskset
from affinity.threads import limited_threads
from bench.data.sources import MissingData, fashion_class_tasks
from bench.eta import EtaLog

ETA_TOLERANCE = 0.30
MAX_MINUTES, MAX_GIB = 45, 16
# classes: 0 T-shirt, 1 trouser, 2 pullover, 3 dress, 4 coat, 5 sandal, 6 shirt, 7 sneaker,
# 8 bag, 9 ankle boot
ATTRIBUTES = {"top": [0, 2, 4, 6], "footwear": [5, 7, 9], "bag": [8], "long_sleeve": [2, 4, 6],
              "lower_body": [1], "dress": [3], "open_shoe": [5], "boot": [9]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--budget", type=float)
    parser.add_argument("--backbone", default="cnn")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = fashion_class_tasks(args.rows, ATTRIBUTES, Path(folder))
        except MissingData as error:
            print(error)
            return 1
        doc = {"name": "fashion", "data": {"path": str(path)},
               "tasks": [{"name": k, "type": "binary"} for k in ATTRIBUTES],
               "model": {"backbone": args.backbone}}
        if args.budget:
            doc["budget"] = {"training_runs": args.budget}
        taskset = parse_taskset(doc)
        data = load_dataset(taskset)
    device = torch.device("cpu")
    sizing = plan(taskset, data, 40, available_bytes(device))
    print(f"{len(data.x_train)} training images, {taskset.model.backbone} backbone; one member "
          f"{sizing.member_bytes / 2**20:.0f} MiB; 40 members in chunks of {sizing.chunk}, "
          f"validation {sizing.eval_rows} rows a forward", flush=True)
    eta = EtaLog(every=5.0)
    with limited_threads(None):
        result = analyze(taskset, data=data, device=device, executor=LocalExecutor(),
                         progress=eta)
    seconds = time.perf_counter() - eta.started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    cost = result.meta.cost.model_dump()
    print(f"\n{result.verdict}\nwall {seconds:.0f} s; peak memory {peak:.2f} GiB; "
          f"{cost['training_runs']:.1f} of {cost['budget']:.1f} training runs "
          f"({cost['wall_run_equivalents']:.1f} wall-time run-equivalents; one run "
          f"{cost['unit_seconds']:.1f} s)")
    for warning in result.meta.warnings:
        print(f"warning: {warning}")
    for s in cost["stages"]:
        print(f"  {s['stage']:40} {s['networks']:3d} networks {s['seconds']:7.1f} s "
              f"{s['training_runs']:5.1f} runs")
    over = cost["wall_run_equivalents"] > 1.25 * cost["budget"]
    print("missed: the run spent more than its budget" if over else "within budget")
    slow = seconds > 60 * MAX_MINUTES or peak >= MAX_GIB
    print(f"{'missed' if slow else 'met'}: at most {MAX_MINUTES} minutes and under {MAX_GIB} "
          f"GiB ({seconds / 60:.1f} minutes, {peak:.2f} GiB)")
    # the ETA from the end of the first stage on (before it, the unit is not known)
    spread, readings = eta.spread(seconds)
    unstable = max(abs(spread[0]), abs(spread[1])) > ETA_TOLERANCE
    print(f"projected total time {100 * spread[0]:+.0f}% to {100 * spread[1]:+.0f}% of the "
          f"actual ({readings} readings; target within ±{100 * ETA_TOLERANCE:.0f}%)")
    levels = {e.evidence for e in result.groupings}
    for e in result.groupings:
        print(f"k={e.k} ({e.evidence}): {' | '.join(', '.join(g) for g in e.groups)}")
    unnamed = False
    if args.budget is None:  # the default: the one-run level where the network is too dear
        nxt = result.meta.next_level
        unnamed = levels != {"predicted"} and nxt is not None
        print(f"{'missed' if unnamed else 'met'}: every k named as "
              + (f"predicted; the measured level: {nxt.training_runs} runs, about "
                 f"{nxt.minutes:.0f} minutes here" if nxt else "measured (the default "
                 "afforded the measured level)"))
    return 1 if over or unstable or slow or unnamed else 0


if __name__ == "__main__":
    sys.exit(main())
