"""Recommendations against exhaustive ground truth (every subset trained), same seeds.

Prints, per data set: the Spearman correlation of each measure with the true pairwise gains;
how well each gain rule predicts the gains of groups of 3+ tasks from pair gains; and the
regret (excess total validation loss over the exhaustive optimum) of the grouping each
(measure, rule) recommends for k = 2, 3. Exits 1 when, on digits (8 tasks), the default
recommendation misses "regret <= 2%" or is not better than TAG's rule on lookahead alone.

A second data set checks that the defaults carry over: breast cancer (bundled with
scikit-learn) with the diagnosis and four regression targets, each labelled on a different
half of the rows.

    python bench/grouping.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from sklearn.datasets import load_breast_cancer

from affinity.analysis import analyze
from affinity.data import load_dataset
from affinity.exhaustive import ExhaustiveTable, exhaustive
from affinity.grouping import select_groups
from affinity.grouping.gain import RULES, group_gains
from affinity.taskset import TaskSet, parse_taskset

TARGET_REGRET = 0.02


def digits_taskset(seeds: int) -> TaskSet:
    return parse_taskset({"name": "digits-8", "data": {"builtin": "digits"},
                          "tasks": [{"name": f"digit_{d}", "type": "binary"} for d in range(8)],
                          "grouping": {"budgets": [1, 2, 3]}, "probe": {"seeds": seeds}})


def cancer_taskset(folder: Path, seeds: int) -> TaskSet:
    data = load_breast_cancer()
    frame = pd.DataFrame(data.data, columns=[c.replace(" ", "_") for c in data.feature_names])
    targets = ["mean_radius", "mean_texture", "mean_smoothness", "worst_symmetry"]
    tasks = frame[targets].copy()
    tasks["malignant"] = 1 - data.target
    frame = frame.drop(columns=targets + ["mean_perimeter", "mean_area", "worst_radius",
                                          "worst_perimeter", "worst_area", "worst_texture",
                                          "worst_smoothness", "symmetry_error"])
    rng = np.random.default_rng(0)
    for column in tasks:  # each task labelled on its own random half of the rows
        tasks.loc[rng.random(len(tasks)) < 0.5, column] = np.nan
    frame = pd.concat([frame, tasks], axis=1)
    frame.to_csv(folder / "cancer.csv", index=False)
    return parse_taskset({
        "name": "breast-cancer-5", "data": {"path": str(folder / "cancer.csv")},
        "tasks": [{"name": "malignant", "type": "binary"}]
        + [{"name": t, "type": "regression"} for t in targets],
        "model": {"hidden": [64, 32]},
        "probe": {"seeds": seeds, "epochs": 20, "batch_size": 64}})


def true_pairwise(table: ExhaustiveTable) -> np.ndarray:
    n = len(table.tasks)
    single = np.array([table.loss[table.subsets.index((j,)), j] for j in range(n)])
    gain = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                pair = table.loss[table.subsets.index(tuple(sorted((i, j)))), j]
                gain[i, j] = (single[j] - pair) / single[j]
    return gain


def rule_fit(table: ExhaustiveTable, pairwise: np.ndarray, rule: str) -> tuple[float, float]:
    """Spearman and mean absolute error of predicted vs true gains in groups of 3+ tasks."""
    n = len(table.tasks)
    single = np.array([table.loss[table.subsets.index((j,)), j] for j in range(n)])
    big = [i for i, s in enumerate(table.subsets) if len(s) >= 3]
    true = (single[None, :] - table.loss[big]) / single[None, :]
    pred = group_gains(pairwise, [table.subsets[i] for i in big], rule)
    keep = ~np.isnan(pred)
    return (float(spearmanr(true[keep], pred[keep]).statistic),
            float(np.abs(true[keep] - pred[keep]).mean()))


def regret(table: ExhaustiveTable, matrix: np.ndarray, rule: str, k: int) -> float:
    groups = select_groups(matrix, k, rule=rule).groups
    return table.regret([[table.tasks[t] for t in g] for g in groups])


def evaluate(taskset: TaskSet, device: torch.device, check: bool) -> list[str]:
    data = load_dataset(taskset).to(device)
    table = exhaustive(taskset, data, device)
    result = analyze(taskset, data=data, device=device)
    truth = true_pairwise(table)
    off = ~np.eye(len(truth), dtype=bool)
    print(f"\n== {taskset.name}: {len(table.tasks)} tasks, {len(table.subsets)} subsets, "
          f"{taskset.probe.seeds} seeds")
    print("exhaustive optimum total loss: "
          + ", ".join(f"k={k} {table.optimum(k)[1]:.4g}" for k in (1, 2, 3)))
    print(f"{'measure':12} {'spearman vs true pair gains':>28}")
    for name, m in result.affinity.items():
        print(f"{name:12} {spearmanr(m.matrix[off], truth[off]).statistic:28.2f}")
    print(f"{'rule':6} {'spearman':>9} {'MAE':>7}   (gains of groups of 3+ from true pair gains)")
    for rule in RULES:
        rho, mae = rule_fit(table, truth, rule)
        print(f"{rule:6} {rho:9.3f} {mae:7.3f}")
    print(f"{'measure':12} {'rule':5} {'regret k=2':>11} {'regret k=3':>11}")
    regrets = {}
    for name, m in result.affinity.items():
        for rule in RULES:
            regrets[name, rule] = [regret(table, m.matrix, rule, k) for k in (2, 3)]
            mark = "  <- default" if (name, rule) == (taskset.driver,
                                                     taskset.grouping.rule) else ""
            print(f"{name:12} {rule:5} {100 * regrets[name, rule][0]:10.2f}% "
                  f"{100 * regrets[name, rule][1]:10.2f}%{mark}")
    ours = [table.regret(next(e["groups"] for e in result.groupings if e["k"] == k))
            for k in (2, 3)]
    other = exhaustive(taskset, data, device, first_seed=500)  # an independent replicate
    floor = [table.regret(other.optimum(k)[0]) for k in (2, 3)]
    print(f"{'noise floor':24}{100 * floor[0]:10.2f}% {100 * floor[1]:10.2f}%   <- optimum of "
          "an exhaustive replicate on other seeds, scored here")
    print(f"{'recommended (verified best of ' + str(taskset.grouping.candidates) + ')':24}"
          f"{100 * ours[0]:10.2f}% {100 * ours[1]:10.2f}%   <- what `affinity run` returns")
    replicate = [other.regret(next(e["groups"] for e in result.groupings if e["k"] == k))
                 for k in (2, 3)]
    predicted = [other.regret([[table.tasks[t] for t in g] for g in select_groups(
        result.affinity[taskset.driver].matrix, k, rule=taskset.grouping.rule).groups])
        for k in (2, 3)]
    print(f"scored on the replicate (seeds independent of every probe): recommended "
          f"{100 * replicate[0]:.2f}% / {100 * replicate[1]:.2f}%, predicted best "
          f"{100 * predicted[0]:.2f}% / {100 * predicted[1]:.2f}%")
    if not check:
        return []
    tag = regrets["lookahead", "mean"]
    missed = []
    for k, r, t in zip((2, 3), ours, tag, strict=True):
        if r > TARGET_REGRET:
            missed.append(f"{taskset.name} k={k}: regret {100 * r:.2f}% > 2%")
        if r >= t and t > 0:
            missed.append(f"{taskset.name} k={k}: regret {100 * r:.2f}% not below TAG's "
                          f"lookahead/mean {100 * t:.2f}%")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as folder:
        missed = evaluate(digits_taskset(args.seeds), device, check=True)
        evaluate(cancer_taskset(Path(folder), args.seeds), device, check=False)
    if missed:
        print("\nmissed:\n  " + "\n  ".join(missed))
        return 1
    print("\nall targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
