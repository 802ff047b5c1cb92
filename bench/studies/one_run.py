"""One-run evidence against the truth: Spearman of each matrix the all-in-one run gives
(gradient cosine, lookahead, and two of ``bench/studies/linearized.py``: the z-scored subset
affinity and the pair gains against each task's step alone) with the truth's pair gains
(``bench/targets/grouping.py`` prints trained pairs' beside), per set and probe seed: over
every ordered pair, and within each target (the mean over targets j of the Spearman over
partners i, which a per-target effect does not reach), with the seconds each took and each
half's means. Exits 1 when neither linearised matrix's mean (over every ordered pair) is
above both of the others'.

    python -m bench.studies.one_run [NAME ...] [--seeds 3]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from affinity.data import load_dataset
from affinity.measures import MEASURES, ProbeRun
from affinity.probes.joint import run_joint
from affinity.probes.subsets import run_subsets
from bench.data.realsets import HALVES, REALSETS
from bench.studies.linearized import linearized_affinity, pair_gains_from_alone
from bench.truths.ground_truth import Truth

ONE_RUN = ("grad_cosine", "lookahead", "linearized", "linearized_pairs")


def spearman(matrix: np.ndarray, truth: np.ndarray) -> float:
    """Over every ordered pair; 0 for a matrix that ranks nothing (all equal)."""
    pairs = list(itertools.permutations(range(len(truth)), 2))
    mine = [matrix[p] for p in pairs]
    if np.ptp(mine) == 0:
        return 0.0
    return float(stats.spearmanr(mine, [truth[p] for p in pairs])[0])


def within_targets(matrix: np.ndarray, truth: np.ndarray) -> float:
    """The mean over targets j of the Spearman over partners i of column j (0 for a column
    that ranks nothing)."""
    n = len(truth)
    rhos = []
    for j in range(n):
        mine, theirs = np.delete(matrix[:, j], j), np.delete(truth[:, j], j)
        rhos.append(0.0 if np.ptp(mine) == 0 or np.ptp(theirs) == 0
                    else float(stats.spearmanr(mine, theirs)[0]))
    return float(np.mean(rhos))


def evaluate(name: str, seeds: int) -> list[dict]:
    truth = Truth.read(name).pair_gains()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        taskset = REALSETS[name](Path(folder))
        data = load_dataset(taskset)
        for seed in range(seeds):
            torch.manual_seed(seed)
            started = time.perf_counter()
            joint = run_joint(taskset, data, seed, torch.device("cpu"))
            row = {"name": name, "seed": seed, "joint_s": time.perf_counter() - started}
            # the all-in-one network again, as a subset probe, which keeps its checkpoint
            everyone = run_subsets(taskset, data, [tuple(range(data.n_tasks))], seed,
                                   torch.device("cpu"))
            run = ProbeRun(taskset, data, seed, joint, everyone)
            checkpoint = copy.deepcopy(everyone.initial)
            checkpoint.load_state_dict({k: v[0] for k, v in everyone.params.items()})
            for m in ONE_RUN:
                started = time.perf_counter()
                matrix = np.asarray(
                    linearized_affinity(checkpoint, data, seed) if m == "linearized" else
                    pair_gains_from_alone(checkpoint, data, seed) if m == "linearized_pairs"
                    else MEASURES[m].compute(run))
                row[m] = spearman(matrix, truth)
                row[f"{m}_within"] = within_targets(matrix, truth)
                row[f"{m}_s"] = time.perf_counter() - started
            rows.append(row)
            print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in row.items()), flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = []
    for half, names in HALVES.items():
        for name in names:
            if not args.names or name in args.names:
                rows += [{**r, "half": half} for r in evaluate(name, args.seeds)]
    for half in HALVES:
        mine = [r for r in rows if r["half"] == half]
        if mine:
            print(half, " ".join(f"{m}={np.mean([r[m] for r in mine]):+.2f} "
                                 f"(within {np.mean([r[m + '_within'] for r in mine]):+.2f})"
                                 for m in ONE_RUN))
    means = {m: np.mean([r[m] for r in rows]) for m in ONE_RUN}
    return 0 if max(means["linearized"], means["linearized_pairs"]) > \
        max(means["grad_cosine"], means["lookahead"]) else 1


if __name__ == "__main__":
    sys.exit(main())
