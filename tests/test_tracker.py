"""The affinity tracker inside a plain user training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import affinity
from affinity.data import load_dataset
from affinity.probes.common import init_model
from affinity.probes.joint import run_joint
from affinity.task_types import TaskLosses
from affinity.taskset import parse_taskset
from affinity.tracker import AffinityTracker
from affinity.training import Minibatches, make_optimizer, own_rows
from tests.conftest import digits_frame

EPOCHS = 3


@pytest.fixture
def setup(tmp_path, device):
    frame = digits_frame(300)
    frame.to_csv(tmp_path / "d.csv", index=False)
    ts = parse_taskset({
        "data": {"path": str(tmp_path / "d.csv"), "features": [f"pixel_{i}" for i in range(64)]},
        "tasks": [{"name": "zero", "column": "digit_0", "type": "binary"},
                  {"name": "twin", "column": "digit_0", "type": "binary"},  # zero's twin
                  {"name": "label", "type": "multiclass"},
                  {"name": "ink", "type": "regression"}],
        "model": {"hidden": [16]},
        "training": {"epochs": EPOCHS, "batch_size": 32, "patience": EPOCHS},
        "probe": {"lookahead": "first_order", "lookahead_lr": 0.05}})
    return ts, load_dataset(ts).to(device)


def users_loop(ts, data, device, tracker: AffinityTracker) -> None:
    """A plain training loop (the same seed, weights and batches as the joint probe)."""
    model = init_model(ts, data, 0).to(device)
    losses = TaskLosses(data.tasks)
    opt = make_optimizer(model.parameters(), ts.training)
    everyone = torch.ones(1, data.n_tasks, device=device)
    batches = Minibatches(own_rows(data.labelled(data.y_train), everyone),
                          ts.training.batch_size, 0)
    one, epochs = torch.zeros(1, dtype=torch.long, device=device), 0
    while epochs < EPOCHS:
        batch = batches.next(one)
        x, y = batch.select(data.x_train, data.y_train)
        opt.zero_grad()
        tracker.backward(losses(model(x), y), model.trunk.parameters())
        opt.step()
        epochs += int(batch.ends.item())


def test_tracker_in_a_user_loop_equals_the_joint_probe(setup, device):
    ts, data = setup
    probe = run_joint(ts, data, 0, device, every=5)
    assert probe.epochs == EPOCHS
    tracker = AffinityTracker(ts.task_names, every=5, lr=ts.probe.lookahead_lr)
    users_loop(ts, data, device, tracker)
    got = tracker.result()
    assert tracker.samples == probe.n_samples
    np.testing.assert_allclose(got["grad_cosine"].matrix, probe.grad_cosine, atol=1e-5)
    np.testing.assert_allclose(got["lookahead"].matrix, probe.lookahead, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(got["conflict_rate"].matrix, probe.conflict_rate, atol=1e-9)
    assert (got["grad_cosine"].std >= 0).all() and got["grad_cosine"].std.max() > 0
    # the twin is zero's strongest partner, both ways
    cos = got["grad_cosine"].matrix
    assert cos[0, 1] == pytest.approx(1) and cos[0, 1] > cos[0, 2:].max()


def test_tracker_matrix_feeds_affinity_group(setup, device, tmp_path):
    ts, data = setup
    tracker = AffinityTracker(ts.task_names, every=3)
    users_loop(ts, data, device, tracker)
    path = tracker.write(tmp_path / "lookahead.csv")
    entries = affinity.group(path, [2])
    assert entries[0]["k"] == 2
    assert any({"zero", "twin"} <= set(g) for g in entries[0]["groups"])


def test_tracker_refuses_bad_input():
    with pytest.raises(ValueError, match="distinct"):
        AffinityTracker(["a", "a"])
    tracker = AffinityTracker(["a", "b"])
    with pytest.raises(ValueError, match="one per task"):
        tracker.backward(torch.zeros(3, requires_grad=True), [])
    with pytest.raises(ValueError, match="no step sampled"):
        tracker.result()
