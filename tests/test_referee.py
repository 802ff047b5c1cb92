"""The benchmark's referee (bench/truths/referee.py, a separate trainer written from the documented
recipe) and the project's trainer agree on what training gives, within seed noise: the
all-in-one and the single-task losses of each task. Neither can drift alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from affinity.data import load_dataset
from affinity.probes.joint import run_joint
from affinity.probes.subsets import run_subsets
from affinity.taskset import parse_taskset
from bench.truths import referee
from tests.conftest import digits_frame

TASKS = {"zero": "binary", "parity": "binary", "ink": "regression"}
SEEDS = range(6)
PIXELS = [f"pixel_{i}" for i in range(64)]


@pytest.fixture(scope="module")
def frame():
    frame = digits_frame(600)
    frame["zero"] = frame["digit_0"]
    frame["split"] = np.where(np.arange(len(frame)) % 4 == 0, "val", "train")
    frame.loc[frame.index % 3 == 0, "ink"] = np.nan  # a task labelled on part of the rows
    return frame


def test_the_referee_and_the_project_agree_within_seed_noise(frame, tmp_path):
    recipe = {"epochs": 25, "batch_size": 64, "patience": 4}
    frame.to_csv(tmp_path / "d.csv", index=False)
    ts = parse_taskset({"data": {"path": str(tmp_path / "d.csv"), "features": PIXELS,
                                 "split_column": "split"},
                        "tasks": [{"name": t, "type": k} for t, k in TASKS.items()],
                        "model": {"hidden": [32]}, "training": recipe})
    data = load_dataset(ts)
    table = referee.prepare(frame, TASKS, PIXELS, (frame["split"] == "val").to_numpy())
    names = list(TASKS)
    ours, theirs = {"joint": [], "single": []}, {"joint": [], "single": []}
    for seed in SEEDS:
        ours["joint"].append(run_joint(ts, data, seed, "cpu").val_loss)
        singles = run_subsets(ts, data, [(0,), (1,), (2,)], seed, "cpu", keep_params=False)
        ours["single"].append(np.diag(singles.val_loss))
        joint = referee.train(table, names, [32], recipe, 100 + seed)
        theirs["joint"].append([joint[t] for t in names])
        theirs["single"].append([referee.train(table, [t], [32], recipe, 100 + seed)[t]
                                 for t in names])
    for kind in ("joint", "single"):
        a, b = np.array(ours[kind]), np.array(theirs[kind])
        noise = np.sqrt(a.var(axis=0, ddof=1) / len(a) + b.var(axis=0, ddof=1) / len(b))
        gap = np.abs(a.mean(axis=0) - b.mean(axis=0))
        assert (gap <= 4 * noise + 0.03 * b.mean(axis=0)).all(), (kind, a.mean(0), b.mean(0))



@pytest.mark.parametrize("standardize", [True, False])
def test_the_truth_reads_a_task_set_as_the_project_does(tmp_path, standardize):
    """bench/truths/make.py builds the referee's table from a task set's documented fields:
    the same rows, features, split and targets (standardised or not) as the project."""
    from bench.truths.make import referee_table

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(5, 3, (300, 4)), columns=list("abcd"))
    frame["flag"] = (frame["a"] > 5).astype(float)
    frame["size"] = np.where(rng.random(300) < 0.3, np.nan, frame["b"] * 10 + 7)
    frame["kind"] = rng.choice(["low", "mid", "high"], 300)
    frame["split"] = np.where(rng.random(300) < 0.25, "val", "train")
    frame.to_csv(tmp_path / "t.csv", index=False)
    ts = parse_taskset({"data": {"path": str(tmp_path / "t.csv"), "features": list("abcd"),
                                 "split_column": "split",
                                 "standardize": {"features": standardize,
                                                 "targets": standardize}},
                        "tasks": [{"name": "flag", "type": "binary"},
                                  {"name": "size", "type": "regression"},
                                  {"name": "kind", "type": "multiclass"}]})
    data = load_dataset(ts)
    table = referee_table(ts)
    assert np.allclose(table.x_train, data.x_train.numpy(), atol=1e-5)
    assert np.allclose(table.x_val, data.x_val.numpy(), atol=1e-5)
    for j, task in enumerate(ts.task_names):
        for ours, theirs in ((data.y_train, table.y_train), (data.y_val, table.y_val)):
            assert np.allclose(ours[:, j].numpy(), theirs[task], atol=1e-5, equal_nan=True)
