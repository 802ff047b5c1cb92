"""The benchmark's real data sets, each a task set of a different kind, built from data that
ships inside scikit-learn. Each builder writes its CSV into a folder and returns the task
set (with its training recipe: how these networks are trained to convergence).

| name | kind | tasks |
|---|---|---|
| digits-attributes | image attributes (8x8 digit images) | 8 binary |
| digits-own-rows | tasks each with their own rows (disjoint) | 8 binary |
| diabetes-groups | per-group regression, each row labelled for one task | 6 regression |
| cancer-mixed | mixed binary + regression, labels on disjoint halves | 1 binary + 4 regression |
| cancer-flags | multi-label flags from tabular features (pruned path: > 10 tasks) | 12 binary |
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits

from affinity.taskset import TaskSet, parse_taskset

RECIPE = {"epochs": 200, "batch_size": 64, "optimizer": "adam", "lr": 1e-3, "patience": 8}


def _taskset(name: str, path: Path, tasks: list[tuple[str, str]], hidden: list[int],
             **training: object) -> TaskSet:
    return parse_taskset({
        "name": name, "data": {"path": str(path)},
        "tasks": [{"name": t, "type": kind} for t, kind in tasks],
        "model": {"hidden": hidden}, "training": {**RECIPE, **training}})


def digits_attributes(folder: Path) -> TaskSet:
    digits = load_digits()
    frame = pd.DataFrame(digits.data, columns=[f"px{i}" for i in range(64)])
    d = digits.target
    attributes = {"even": d % 2 == 0, "large": d >= 5, "prime": np.isin(d, [2, 3, 5, 7]),
                  "loop": np.isin(d, [0, 6, 8, 9]), "straight": np.isin(d, [1, 4, 7]),
                  "zero": d == 0, "three": d == 3, "six_or_nine": np.isin(d, [6, 9])}
    for name, flag in attributes.items():
        frame[name] = flag.astype(int)
    frame.to_csv(folder / "digits_attributes.csv", index=False)
    return _taskset("digits-attributes", folder / "digits_attributes.csv",
                    [(t, "binary") for t in attributes], [64, 32], batch_size=128)


def digits_own_rows(folder: Path) -> TaskSet:
    digits = load_digits()
    frame = pd.DataFrame(digits.data, columns=[f"px{i}" for i in range(64)])
    owner = np.random.default_rng(7).integers(0, 8, len(frame))
    for t in range(8):
        frame[f"is_{t}"] = np.where(owner == t, (digits.target == t).astype(float), np.nan)
    frame.to_csv(folder / "digits_own_rows.csv", index=False)
    return _taskset("digits-own-rows", folder / "digits_own_rows.csv",
                    [(f"is_{t}", "binary") for t in range(8)], [64, 32])


def diabetes_groups(folder: Path) -> TaskSet:
    data = load_diabetes(scaled=False)
    frame = pd.DataFrame(data.data, columns=data.feature_names)
    age_band = np.digitize(frame["age"], np.quantile(frame["age"], [1 / 3, 2 / 3]))
    group = (frame["sex"].to_numpy() > 1.5).astype(int) * 3 + age_band
    names = [f"{sex}_{age}" for sex in ("f", "m") for age in ("young", "mid", "old")]
    for g, name in enumerate(names):
        frame[name] = np.where(group == g, data.target, np.nan)
    frame.to_csv(folder / "diabetes_groups.csv", index=False)
    return _taskset("diabetes-groups", folder / "diabetes_groups.csv",
                    [(n, "regression") for n in names], [32, 16], batch_size=32)


def _cancer_frame() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_breast_cancer()
    return (pd.DataFrame(data.data, columns=[c.replace(" ", "_") for c in data.feature_names]),
            1 - data.target)


def cancer_mixed(folder: Path) -> TaskSet:
    frame, malignant = _cancer_frame()
    targets = ["mean_radius", "mean_texture", "mean_smoothness", "worst_symmetry"]
    tasks = frame[targets].copy()
    tasks["malignant"] = malignant
    frame = frame.drop(columns=targets + ["mean_perimeter", "mean_area", "worst_radius",
                                          "worst_perimeter", "worst_area", "worst_texture",
                                          "worst_smoothness", "symmetry_error"])
    rng = np.random.default_rng(0)
    for column in tasks:  # each task labelled on its own random half of the rows
        tasks.loc[rng.random(len(tasks)) < 0.5, column] = np.nan
    pd.concat([frame, tasks], axis=1).to_csv(folder / "cancer_mixed.csv", index=False)
    return _taskset("cancer-mixed", folder / "cancer_mixed.csv",
                    [("malignant", "binary")] + [(t, "regression") for t in targets], [64, 32],
                    batch_size=32)


FLAGS = ["radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
         "concave_points", "symmetry", "fractal_dimension", "radius_error"]


def cancer_flags(folder: Path) -> TaskSet:
    frame, malignant = _cancer_frame()
    flags = pd.DataFrame({"malignant": malignant})
    for name in FLAGS:
        column = name if name.endswith("_error") else f"worst_{name}"
        flags[f"high_{name}"] = (frame[column] > frame[column].median()).astype(int)
        frame = frame.drop(columns=column)
    pd.concat([frame, flags], axis=1).to_csv(folder / "cancer_flags.csv", index=False)
    return _taskset("cancer-flags", folder / "cancer_flags.csv",
                    [(t, "binary") for t in flags.columns], [32, 16])


DATASETS: dict[str, Callable[[Path], TaskSet]] = {
    "digits-attributes": digits_attributes,
    "digits-own-rows": digits_own_rows,
    "diabetes-groups": diabetes_groups,
    "cancer-mixed": cancer_mixed,
    "cancer-flags": cancer_flags,
}
