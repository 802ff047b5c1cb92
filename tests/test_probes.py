"""The batched probes equal the naive per-task loops (TAG reference style) to float tolerance."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from affinity.data import load_dataset
from affinity.models import stacked_call
from affinity.probes.common import init_model
from affinity.probes.joint import affinity_step, run_joint
from affinity.probes.subsets import run_subsets
from affinity.task_types import TaskLosses
from affinity.taskset import parse_taskset
from bench.naive import naive_affinity_step, naive_joint, naive_subsets
from tests.conftest import digits_frame

PIXELS = [f"pixel_{i}" for i in range(64)]


@pytest.fixture(params=["mlp", "cnn"])
def mixed(request, tmp_path, device):
    """Binary, multiclass and regression tasks with missing labels, on 300 digits rows."""
    frame = digits_frame(300)
    frame.loc[::4, "digit_0"] = np.nan
    frame.loc[1::5, "label"] = ""
    backbone = request.param
    if backbone == "mlp":
        frame.to_csv(tmp_path / "d.csv", index=False)
        data_spec = {"path": str(tmp_path / "d.csv"), "features": PIXELS}
    else:
        np.savez(tmp_path / "d.npz", X=frame[PIXELS].to_numpy().reshape(-1, 1, 8, 8),
                 digit_0=frame["digit_0"].to_numpy(), digit_1=frame["digit_1"].to_numpy(),
                 label=frame["label"].to_numpy().astype("U3"), ink=frame["ink"].to_numpy())
        data_spec = {"path": str(tmp_path / "d.npz")}
    ts = parse_taskset({
        "data": data_spec,
        "tasks": [{"name": "zero", "column": "digit_0", "type": "binary"},
                  {"name": "one", "column": "digit_1", "type": "binary"},
                  {"name": "label", "type": "multiclass"},
                  {"name": "ink", "type": "regression"}],
        "model": {"backbone": backbone, "hidden": [16, 8]},
        "training": {"epochs": 6, "batch_size": 64, "patience": 1},
        "probe": {"seeds": 1, "lookahead_lr": 0.05},
    })
    return ts, load_dataset(ts).to(device)


def test_stacked_call_equals_vmap(mixed):
    """Its own path (batched matmuls for the MLP; on the CPU, member after member for the
    CNN) gives vmap's outputs and gradients, and each member's own."""
    ts, data = mixed
    models = [init_model(ts, data, seed).to(data.x_train.device) for seed in range(3)]
    params, _ = stack_module_state(models)
    got = stacked_call(models[0], params, data.x_val)
    grads = torch.autograd.grad(got.square().sum(), list(params.values()))
    want = vmap(functional_call, in_dims=(None, 0, None))(models[0], params, (data.x_val,))
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(grads, torch.autograd.grad(want.square().sum(),
                                                          list(params.values())))
    torch.testing.assert_close(got[2], models[2](data.x_val))


def test_task_losses_match_torch_per_task(mixed):
    ts, data = mixed
    out = init_model(ts, data, 0).to(data.x_train.device)(data.x_train)
    got = TaskLosses(data.tasks)(out, data.y_train)
    y = data.y_train
    want = []
    for t, (cols, kind) in enumerate([(slice(0, 1), "b"), (slice(1, 2), "b"),
                                      (slice(2, 12), "c"), (slice(12, 13), "r")]):
        keep = ~torch.isnan(y[:, t])
        o, target = out[keep, cols], y[keep, t]
        if kind == "b":
            want.append(F.binary_cross_entropy_with_logits(o[:, 0], target))
        elif kind == "c":
            want.append(F.cross_entropy(o, target.long()))
        else:
            want.append(F.mse_loss(o[:, 0], target))
    torch.testing.assert_close(got, torch.stack(want))


def test_batched_affinity_step_equals_naive(mixed):
    ts, data = mixed
    x, y = data.x_train[:64], data.y_train[:64]
    fast_model = init_model(ts, data, 0).to(x.device)
    slow_model = init_model(ts, data, 0).to(x.device)
    losses = TaskLosses(data.tasks)
    fast = affinity_step(fast_model, losses, x, y, eta=0.05)
    slow = naive_affinity_step(slow_model, losses, x, y, eta=0.05)
    torch.testing.assert_close(fast.cosine, slow.cosine, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fast.lookahead, slow.lookahead, atol=1e-5, rtol=1e-4)
    assert fast.valid.all()
    # the summed per-task gradients are the ordinary training gradient
    for a, b in zip(fast_model.parameters(), slow_model.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=1e-4)


def test_first_order_lookahead_approximates_exact(mixed):
    ts, data = mixed
    x, y = data.x_train[:64], data.y_train[:64]
    losses = TaskLosses(data.tasks)
    model = init_model(ts, data, 0).to(x.device)
    exact = affinity_step(model, losses, x, y, eta=1e-3).lookahead
    first = affinity_step(model, losses, x, y, eta=1e-3, exact=False).lookahead
    torch.testing.assert_close(first, exact, atol=2e-5, rtol=0.05)


def test_joint_probe_equals_naive_loop(mixed, device):
    ts, data = mixed
    fast = run_joint(ts, data, 0, device, every=3)
    slow = naive_joint(ts, data, 0, device, every=3)
    np.testing.assert_allclose(fast.lookahead, slow, atol=1e-5, rtol=1e-3)
    assert fast.n_samples == -(-fast.epochs * -(-len(data.x_train) // 64) // 3)
    assert np.allclose(np.diag(fast.grad_cosine), 1)
    assert ((fast.conflict_rate >= 0) & (fast.conflict_rate <= 1)).all()


def test_batched_subsets_equal_sequential_training(mixed, device):
    ts, data = mixed
    members = [(t,) for t in range(4)] + list(itertools.combinations(range(4), 2)) + [(0, 1, 2)]
    fast = run_subsets(ts, data, members, 0, device)
    slow = naive_subsets(ts, data, members, 0, device)
    np.testing.assert_allclose(fast.val_loss, slow, rtol=1e-4, atol=1e-6)
    assert np.isnan(fast.val_loss[0, 1:]).all() and not np.isnan(fast.val_loss[0, 0])


@pytest.mark.parametrize("recipe", [{"optimizer": "sgd", "lr": 0.02, "momentum": 0.9},
                                    {"optimizer": "adamw", "lr": 0.03, "weight_decay": 0.1}])
def test_every_optimizer_trains_stacked_networks_as_alone(mixed, device, recipe):
    """SGD with momentum and AdamW are elementwise too; stopped networks leave the stack
    with their optimizer state, and the rest train on exactly as alone."""
    ts, data = mixed
    recipe = {**recipe, "epochs": 20, "patience": 2}
    ts = ts.model_copy(update={"training": ts.training.model_copy(update=recipe)})
    members = [(0,), (1,), (2,), (3,), (0, 1), (2, 3), (0, 1, 2, 3)]
    fast = run_subsets(ts, data, members, 0, device)
    slow = naive_subsets(ts, data, members, 0, device)
    # AdamW at lr 0.03 magnifies the rounding of a batched convolution a little
    np.testing.assert_allclose(fast.val_loss, slow, rtol=3e-4, atol=1e-6)
    assert len(set(fast.epochs.tolist())) > 1  # networks stopped at different epochs
    # each network's steps: as many as the stack ran while it trained, whole epochs of the
    # batches of its own rows (task 0 alone has fewer rows: 3 batches an epoch, the rest 4)
    assert fast.member_steps.sum() == fast.network_steps and fast.member_steps.max() == fast.steps
    assert (fast.member_steps / fast.epochs).tolist() == [3, 4, 4, 4, 4, 4, 4]


def test_network_is_scored_at_one_checkpoint(mixed, device):
    """Each network's tasks are scored at the epoch of its least mean validation loss, and
    the joint probe is the all-in-one network of its seed (same start, batches, updates)."""
    ts, data = mixed
    everyone = tuple(range(data.n_tasks))
    stacked = run_subsets(ts, data, [everyone], 0, device)
    joint = run_joint(ts, data, 0, device)
    np.testing.assert_allclose(joint.val_loss, stacked.val_loss[0], rtol=1e-3)
    assert joint.epochs == stacked.epochs[0] <= ts.training.epochs


def test_single_task_probe_ignores_other_tasks_missing_labels(tmp_path, device):
    """A missing label never removes the row from another task's training."""
    frame = digits_frame(300)
    frame.to_csv(tmp_path / "full.csv", index=False)
    frame.loc[::2, "digit_0"] = np.nan
    frame.to_csv(tmp_path / "holes.csv", index=False)
    results = []
    for name in ("full.csv", "holes.csv"):
        ts = parse_taskset({"data": {"path": str(tmp_path / name), "features": PIXELS},
                            "tasks": [{"name": "zero", "column": "digit_0", "type": "binary"},
                                      {"name": "ink", "type": "regression"}],
                            "model": {"hidden": [16]}, "training": {"epochs": 2}})
        data = load_dataset(ts).to(device)
        results.append(run_subsets(ts, data, [(1,)], 0, device).val_loss[0, 1])
    assert results[0] == pytest.approx(results[1], rel=1e-6)
