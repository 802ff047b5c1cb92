"""Hundreds of tasks at the default budget: generated tasks in planted groups, through the
groups predicted from the all-in-one run (its lookahead driving), the selection and the
check of those groups on one fresh seed.

The generator: ``ROWS`` rows of ``FEATURES`` standard-normal features; G groups, each with a
latent direction w_g; a task of group g is the flag tanh(x . (w_g + 0.3 e_t) / sqrt(d)) + 0.3
noise > 0, with e_t its own normal perturbation, so that a group's tasks share a factor and
the groups' factors are independent. The task set: binary tasks, the built-in MLP (one
hidden layer of 64), a 20-epoch recipe, ``grouping.rule: mean`` (see below), k = G, the
default budget (counted compute: at 500 tasks short of the measured level, so the checked
level: the predicted groups, the all-in-one network and a sample of the tasks alone on one
fresh seed). Prints the wall time, the peak memory, the level, what the measured level would
cost, the verdict, and the adjusted Rand index of the predicted k = G groups (each task
labelled by the smallest predicted group that holds it) with the planted ones; exits 1
unless, at 500 tasks, the analysis finishes in under 15 minutes and 4 GiB and the index is
at least 0.8.

Under the sum rule a task's predicted gain grows with its group's size wherever affinities
are positive, so where no group conflicts with another the summed choice nests large groups
(index 0.05 at 500 tasks); the mean rule asks which partners help a task most (index 1.0).

    python -m bench.targets.many_tasks [--tasks 500] [--groups 10]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
from sklearn.metrics import adjusted_rand_score

from affinity.analysis import analyze
from affinity.in_memory import tensors
from affinity.taskset import parse_taskset
from affinity.threads import limited_threads
from bench.verdict import verdict

ROWS, FEATURES, VAL_SHARE = 4000, 16, 0.2
MAX_MINUTES, MAX_GIB, MIN_ARI = 15, 4.0, 0.8


def planted(n_tasks: int, n_groups: int, seed: int = 0
            ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Features (ROWS, FEATURES), each task's 0/1 labels, and each task's planted group."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(ROWS, FEATURES)).astype(np.float32)
    directions = rng.normal(size=(n_groups, FEATURES))
    group = np.arange(n_tasks) * n_groups // n_tasks
    labels = {}
    for t in range(n_tasks):
        w = directions[group[t]] + 0.3 * rng.normal(size=FEATURES)
        z = np.tanh(x @ w / np.sqrt(FEATURES)) + 0.3 * rng.normal(size=ROWS)
        labels[f"t{t}"] = (z > 0).astype(float)
    return x, labels, group


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--groups", type=int, default=10)
    args = parser.parse_args()
    x, labels, group = planted(args.tasks, args.groups)
    taskset = parse_taskset({
        "name": f"planted-{args.tasks}", "data": {"in_memory": True},
        "tasks": [{"name": t, "type": "binary"} for t in labels],
        "measures": ["lookahead", "grad_cosine"],
        "grouping": {"budgets": [args.groups], "rule": "mean"},
        "model": {"hidden": [64]}, "training": {"epochs": 20, "batch_size": 256}})
    cut = int(ROWS * (1 - VAL_SHARE))
    data = tensors(taskset, (x[:cut], {t: v[:cut] for t, v in labels.items()}),
                   (x[cut:], {t: v[cut:] for t, v in labels.items()}))
    started = time.perf_counter()
    with limited_threads(None):
        result = analyze(taskset, data=data, device="cpu")
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    entry = result.groupings[0]
    predicted = entry.best_groups or entry.groups  # what was predicted, whatever it decided
    served = [min((len(g), i) for i, g in enumerate(predicted) if t in g)[1] for t in labels]
    ari = adjusted_rand_score(group, served)
    nxt = result.meta.next_level
    print(f"{args.tasks} tasks in {args.groups} planted groups: {seconds:.0f} s, peak "
          f"{peak:.2f} GiB, {result.meta.cost.training_runs:.1f} training runs; "
          f"evidence {entry.evidence}; predicted groups of "
          f"{sorted(len(g) for g in entry.best_groups or entry.groups)}; "
          f"adjusted Rand index {ari:.2f}")
    if nxt:
        print(f"the measured level: {nxt.training_runs} training runs, about "
              f"{nxt.minutes:.0f} minutes here")
    print(result.verdict)
    missed = []
    if args.tasks >= 500:
        if seconds > 60 * MAX_MINUTES:
            missed.append(f"{seconds / 60:.1f} minutes > {MAX_MINUTES}")
        if peak >= MAX_GIB:
            missed.append(f"peak memory {peak:.2f} GiB >= {MAX_GIB}")
        if ari < MIN_ARI:
            missed.append(f"adjusted Rand index {ari:.2f} < {MIN_ARI}")
    return verdict(missed)


if __name__ == "__main__":
    sys.exit(main())
