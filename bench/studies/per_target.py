"""The per-target effect, measured: what the all-in-one network and every task alone, trained
on one probe seed, say about pairs and groupings, against the truth, beside TAG's rule on the
same seed's all-in-one run.

The truth's pair gains (task j's loss beside task i against j alone) are mostly a per-target
effect: how much j gains from a partner at all (``bench.studies.one_run``: no matrix of the
all-in-one run alone ranks them). That effect is measured directly by j's gain in the
all-in-one network over j alone, g_j, so the evidence here is M[i][j] = g_j. Per set and
seed, it prints:
- the Spearman of M with the truth's pair gains, over every ordered pair;
- the regret (``bench.targets.grouping``) for k = 2, 3 of the groups the sum rule picks on M;
  of the decision among those groups, one network for all and every task alone by their
  predicted total loss (a task in a group of two or more at its all-in-one loss, else at its
  loss alone); of TAG's rule (the mean rule on the run's lookahead, as the grouping
  benchmark's anchor); and of each baseline;
- the training runs all that cost (network-steps over the all-in-one network's).

Each half's means follow. Exits 1 when the checking half misses the one-run target: mean
Spearman >= 0.3, and a decided regret below both TAG's rule's and the better baseline's (the
lower of the two baselines' on the truth, per set and k).

With ``--pool N`` each row averages the losses of N seeds (about 4 N runs).

    python -m bench.studies.per_target [NAME ...] [--seeds 3] [--pool N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from affinity.data import load_dataset
from affinity.grouping.select import select_groups
from affinity.measures import MEASURES, ProbeRun
from affinity.probes.joint import run_joint
from affinity.probes.subsets import run_subsets
from bench.data.realsets import HALVES, LARGE, REALSETS
from bench.studies.one_run import spearman
from bench.truths.ground_truth import Truth

KS = (2, 3)
Groups = list[tuple[int, ...]]


def predicted_total(groups: Groups, joint: np.ndarray, alone: np.ndarray) -> float:
    """Each task at its best group: its all-in-one loss in a group of two or more, else its
    loss alone."""
    return float(sum(min(joint[j] if len(g) > 1 else alone[j] for g in groups if j in g)
                     for j in range(len(alone))))


def evaluate(name: str, seeds: Sequence[int]) -> dict[str, float]:
    """The scores of the evidence of ``seeds`` (their losses averaged); TAG's rule on the
    first seed's run."""
    truth = Truth.read(name)
    with tempfile.TemporaryDirectory() as folder:
        taskset = REALSETS[name](Path(folder))
        data = load_dataset(taskset)
    n = data.n_tasks
    everyone: Groups = [tuple(range(n))]
    singles: Groups = [(t,) for t in range(n)]
    probes = []
    for seed in seeds:
        torch.manual_seed(seed)
        probes.append(run_subsets(taskset, data, everyone + singles, seed, torch.device("cpu")))
    loss = np.mean([p.val_loss for p in probes], axis=0)
    joint = loss[0]
    alone = np.array([loss[1 + t][t] for t in range(n)])
    evidence = np.tile((alone - joint) / alone, (n, 1))
    row = {"spearman": spearman(evidence, truth.pair_gains()),
           "runs": float(sum(p.member_steps.sum() for p in probes) / probes[0].member_steps[0])}
    if name in LARGE:  # not every subset in its truth: no regret
        return row
    lookahead = MEASURES["lookahead"].compute(ProbeRun(
        taskset, data, seeds[0], run_joint(taskset, data, seeds[0], torch.device("cpu")),
        probes[0]))
    rng = np.random.default_rng(0)
    for k in KS:
        rand = truth.random_mean(k, rng)
        picked = select_groups(evidence, k, rule="sum").groups
        options: dict[str, Groups] = {"groups": picked, "all": everyone, "single": singles}
        decided = min(options.values(), key=lambda g: predicted_total(g, joint, alone))
        scores: dict[str, Groups] = {
            **options, "decided": decided,
            "tag": select_groups(np.asarray(lookahead), k, rule="mean").groups}
        for label, groups in scores.items():
            row[f"{label}{k}"] = truth.regret(groups, k, rand)
        row[f"better{k}"] = min(row[f"all{k}"], row[f"single{k}"])
    return row


def mean(rows: list[dict[str, float]], key: str) -> float:
    """The mean over rows and k of ``key`` (``key`` + k where the rows hold it per k)."""
    values = [r[key] for r in rows if key in r] + \
        [r[f"{key}{k}"] for r in rows for k in KS if f"{key}{k}" in r]
    return float(np.mean(values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pool", type=int, default=1,
                        help="seeds whose losses each row averages (seed s, s + 1, ...)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    labels = ("spearman", "groups", "decided", "tag", "all", "single", "better", "runs")
    halves: dict[str, list[dict[str, float]]] = {}
    for half, names in HALVES.items():
        for name in names:
            if args.names and name not in args.names:
                continue
            for seed in range(args.seeds):
                row = evaluate(name, range(seed, seed + args.pool))
                halves.setdefault(half, []).append(row)
                print(f"{half:8} {name:20} seed {seed} " + " ".join(
                    f"{k}={v:+.2f}" for k, v in row.items()), flush=True)
    for half, rows in halves.items():
        print(f"{half} mean: " + ", ".join(f"{label} {mean(rows, label):+.2f}"
                                           for label in labels))
    checking = halves.get("checking")
    if not checking:
        return 0
    met = mean(checking, "spearman") >= 0.3 and \
        mean(checking, "decided") < min(mean(checking, "tag"), mean(checking, "better"))
    print("one-run target (checking half):", "met" if met else "missed")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
