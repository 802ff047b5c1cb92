"""The training recipe's parts: each network's own minibatches and early stopping."""

from __future__ import annotations

import math

import numpy as np
import torch

from affinity.data import load_dataset
from affinity.probes.subsets import run_subsets
from affinity.taskset import parse_taskset
from affinity.training import EarlyStopping, Minibatches, own_rows
from tests.conftest import digits_frame


def drawn(batches: Minibatches, active: list[int], steps: int) -> tuple[list, list]:
    """Per active network, the rows of each step and the steps that ended an epoch."""
    rows, ends = [[] for _ in active], [[] for _ in active]
    ids = torch.tensor(active)
    for step in range(steps):
        b = batches.next(ids)
        for i in range(len(active)):
            r = b.rows if b.valid is None else b.rows[i][b.valid[i]]
            rows[i].append(r.tolist())
            if b.ends[i]:
                ends[i].append(step)
    return rows, ends


def test_each_network_passes_over_its_own_rows_once_an_epoch():
    own = torch.zeros(3, 20, dtype=torch.bool)
    own[0, :5] = True  # 5 rows: 2 steps an epoch at batch 4
    own[1, 5:] = True  # 15 rows: 4 steps
    own[2] = True  # every row: 5 steps
    rows, ends = drawn(Minibatches(own, 4, seed=0), [0, 1, 2], 20)
    for i, n in enumerate((5, 15, 20)):
        per_epoch = math.ceil(n / 4)
        assert ends[i] == list(range(per_epoch - 1, 20, per_epoch))
        for e in range(len(ends[i])):
            epoch = sum(rows[i][e * per_epoch:(e + 1) * per_epoch], [])
            assert sorted(epoch) == torch.nonzero(own[i]).squeeze(1).tolist()
    assert rows[0][0] != rows[0][2]  # a new shuffle each epoch


def test_networks_with_the_same_rows_share_minibatches():
    own = torch.zeros(2, 30, dtype=torch.bool)
    own[:, ::2] = True
    batches = Minibatches(own, 4, seed=3)
    assert batches.shared
    b = batches.next(torch.tensor([0, 1]))
    assert b.valid is None and b.rows.shape == (4,) and (b.rows % 2 == 0).all()
    # a network draws the same minibatches alone, beside a twin, or beside other rows
    alone, _ = drawn(Minibatches(own[:1], 4, seed=3), [0], 8)
    twins, _ = drawn(Minibatches(own, 4, seed=3), [0, 1], 8)
    mixed, _ = drawn(Minibatches(torch.stack([own[0], ~own[0]]), 4, seed=3), [0, 1], 8)
    assert twins[0] == twins[1] == alone[0] == mixed[0]


def test_own_rows_are_the_rows_labelled_for_a_member_task():
    y = torch.tensor([[1.0, float("nan")], [float("nan"), 0.0], [float("nan")] * 2])
    members = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert own_rows(~torch.isnan(y), members).tolist() == [
        [True, False, False], [False, True, False], [True, True, False]]


def test_min_delta_stops_a_loss_that_only_creeps():
    stopper = EarlyStopping(2, patience=3, min_delta=1e-3)
    creeping, falling, epochs = 1.0, 1.0, 0
    while epochs < 50:
        improved, stopped = stopper.update(torch.tensor([creeping, falling]))
        epochs += 1
        if stopped[0]:
            break
        creeping *= 1 - 1e-5  # improves every epoch, by far less than 1e-3 of the first loss
        falling *= 0.9
    assert epochs == 4 and not stopped[1]


def test_update_leaves_networks_outside_which_alone():
    stopper = EarlyStopping(2, patience=1)
    stopper.update(torch.tensor([1.0, 1.0]))
    improved, stopped = stopper.update(torch.tensor([2.0, float("nan")]),
                                       torch.tensor([True, False]))
    assert stopped.tolist() == [True, False] and stopper.wait.tolist() == [1, 0]


def test_a_task_with_its_own_rows_trains_on_them_alone(tmp_path, device):
    """Two tasks labelled on disjoint halves: each single-task network's epoch is a pass over
    its half (half the steps of the pair's), and the pair trains on every row."""
    frame = digits_frame(400)
    frame.loc[200:, "digit_0"] = np.nan
    frame.loc[:199, "digit_1"] = np.nan
    frame.to_csv(tmp_path / "d.csv", index=False)
    ts = parse_taskset({
        "data": {"path": str(tmp_path / "d.csv"), "features": [f"pixel_{i}" for i in range(64)]},
        "tasks": [{"name": "zero", "column": "digit_0", "type": "binary"},
                  {"name": "one", "column": "digit_1", "type": "binary"}],
        "model": {"hidden": [16]},
        "training": {"epochs": 4, "batch_size": 32, "patience": 10}})
    data = load_dataset(ts).to(device)
    probe = run_subsets(ts, data, [(0,), (1,), (0, 1)], 0, device)
    assert probe.epochs.tolist() == [4, 4, 4]
    labelled = (~torch.isnan(data.y_train)).sum(0).tolist()
    single = [math.ceil(n / 32) * 4 for n in labelled]
    pair = math.ceil(len(data.x_train) / 32) * 4
    assert probe.steps == pair and probe.network_steps == sum(single) + pair
