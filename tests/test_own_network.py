"""Your own network end to end: data as tensors, a DataLoader or one set per task
(``affinity.tensors``), heads and losses of your own (a dense per-pixel task), BatchNorm, and
the member-by-member fallback for modules vmap cannot run."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import affinity
from affinity.data import load_dataset
from affinity.models import MultiTaskNet, check_backbone, own_heads, vmappable
from affinity.probes.subsets import run_subsets
from affinity.task_types import TaskLosses
from affinity.taskset import InvalidTaskSet, parse_taskset
from bench.naive import naive_subsets

FASHION = Path("/usr/share/datasets/fashion-mnist")


class ResNetish(nn.Module):
    """A stem and one residual block with BatchNorm, global pooling: features (N, width)."""

    def __init__(self, in_channels: int, width: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1),
                                  nn.BatchNorm2d(width), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        return self.pool(torch.relu(h + self.block(h)))


def trunk(input_shape: tuple[int, ...]) -> nn.Module:
    return ResNetish(input_shape[0])


def decoder(side: int):
    """A head that maps features to a (1, side, side) image."""
    return lambda width: nn.Sequential(nn.Linear(width, side * side),
                                       nn.Unflatten(1, (1, side, side)))


def digits_images(rows: int) -> tuple[np.ndarray, np.ndarray]:
    d = load_digits()
    return (d.images[:rows, None] / 16.0).astype(np.float32), d.target[:rows]


def fashion_images(rows: int) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(FASHION / "train-images-idx3-ubyte.gz") as fh:
        x = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:rows]
    with gzip.open(FASHION / "train-labels-idx1-ubyte.gz") as fh:
        y = np.frombuffer(fh.read(), np.uint8, offset=8)[:rows]
    return x.astype(np.float32) / 255, y


def image_tasks(images: np.ndarray, label: np.ndarray, top: list[int], side: int):
    """Two binary attribute tasks and a dense one: the image down-sampled to side x side."""
    n, _, h, _ = images.shape
    small = torch.as_tensor(images).reshape(n, 1, side, h // side, side, h // side).mean((3, 5))
    return {"first": torch.as_tensor(np.isin(label, top), dtype=torch.float32),
            "second": torch.as_tensor(label % 2 == 0, dtype=torch.float32),
            "small": small}


def taskset(**training):
    return parse_taskset({
        "data": {"in_memory": True},
        "tasks": [{"name": "first", "type": "binary"}, {"name": "second", "type": "binary"},
                  {"name": "small", "type": "regression"}],
        "training": {"epochs": 2, "batch_size": 64, "patience": 2, "optimizer": "sgd",
                     "lr": 0.05, **training},
        "probe": {"transfer_steps": 20}, "budget": {"training_runs": 12}})


IMAGES = [pytest.param(digits_images, 4, [0, 6, 8, 9], id="digits")]
if FASHION.is_dir():
    IMAGES.append(pytest.param(fashion_images, 7, [0, 2, 4, 6], id="fashion-mnist"))
else:
    IMAGES.append(pytest.param(None, 7, [], id="fashion-mnist", marks=pytest.mark.skip(
        reason="needs Debian's dataset-fashion-mnist (apt install dataset-fashion-mnist)")))


@pytest.mark.parametrize(("read", "side", "top"), IMAGES)
def test_a_dense_task_with_its_own_head_stacks_as_one_by_one(read, side, top, device):
    images, label = read(360)
    targets = image_tasks(images, label, top, side)
    ts = taskset()
    data = affinity.tensors(ts, (images[:300], {k: v[:300] for k, v in targets.items()}),
                            (images[300:], {k: v[300:] for k, v in targets.items()}))
    assert [t.shape for t in data.tasks] == [(), (), (1, side, side)]
    assert data.y_train.shape == (300, 2 + side * side)
    ts = ts.model_copy(update={"model": ts.model.model_copy(update={"backbone": _registered()})})
    width = check_backbone(ts.model, data.input_shape)
    data = own_heads(ts.model, data, {"small": decoder(side)}, {}, width).to(device)
    members = [(0,), (1,), (2,), (0, 2), (0, 1, 2)]
    fast = run_subsets(ts, data, members, 0, device)
    slow = naive_subsets(ts, data, members, 0, device)
    np.testing.assert_allclose(fast.val_loss, slow, rtol=3e-4, atol=1e-6)
    assert fast.params["trunk.stem.1.running_mean"].shape[0] == len(members)
    assert "head.own.2.0.weight" in fast.params  # the own head, stacked like the trunk


def _registered() -> str:
    from affinity.backbones import register

    return register("test:resnetish", trunk)


@pytest.mark.parametrize(("read", "side", "top"), IMAGES)
def test_analyze_runs_your_network_heads_and_losses_end_to_end(read, side, top, device):
    images, label = read(400)
    targets = image_tasks(images, label, top, side)
    ts = taskset()
    result = affinity.analyze(ts, data=affinity.tensors(ts, (images, targets)), trunk=trunk,
                              heads={"small": decoder(side)},
                              losses={"small": lambda p, t: F.l1_loss(p, t, reduction="none")},
                              device=device)
    assert result.tasks == ["first", "second", "small"]
    assert all(np.isfinite(m.matrix).all() for m in result.affinity.values())
    assert result.verdict and [g.k for g in result.groupings] == [1, 2, 3]


def test_the_dense_loss_is_each_rows_mean_over_its_elements():
    images, label = digits_images(50)
    targets = image_tasks(images, label, [0], 4)
    targets["small"][:10] = torch.nan  # ten rows without a target
    data = affinity.tensors(taskset(), (images, targets), (images[:5], image_tasks(
        images[:5], label[:5], [0], 4)))
    losses = TaskLosses(data.tasks)
    out = torch.randn(len(data.y_train), 2 + 16)
    got = losses(out, data.y_train)
    want = ((out[10:, 2:] - targets["small"][10:].reshape(40, 16)) ** 2).mean(1).mean()
    assert got[2].item() == pytest.approx(want.item(), rel=1e-5)
    first = data.y_train[:, 0]
    assert got[0].item() == pytest.approx(F.binary_cross_entropy_with_logits(
        out[:, 0], first).item(), rel=1e-5)
    stacked = losses(out.expand(3, -1, -1), data.y_train)  # networks in front
    np.testing.assert_allclose(stacked.numpy(), got.expand(3, -1).numpy(), rtol=1e-6)


def test_tensors_a_dataloader_and_tasks_with_their_own_rows():
    images, label = digits_images(200)
    targets = image_tasks(images, label, [0, 6, 8, 9], 4)
    ts = taskset()
    plain = affinity.tensors(ts, (images[:150], {k: v[:150] for k, v in targets.items()}),
                             (images[150:], {k: v[150:] for k, v in targets.items()}))

    def loader(rows: slice) -> DataLoader:
        x = torch.as_tensor(images[rows])
        pairs = TensorDataset(x, *(targets[k][rows] for k in ("first", "second", "small")))
        return DataLoader([(x, dict(zip(("first", "second", "small"), ys, strict=True)))
                           for x, *ys in pairs], batch_size=32)

    read = affinity.tensors(ts, loader(slice(0, 150)), loader(slice(150, 200)))
    for a, b in ((plain.x_train, read.x_train), (plain.y_train, read.y_train),
                 (plain.y_val, read.y_val)):
        torch.testing.assert_close(a, b, equal_nan=True)
    # every task with rows of its own: labels on disjoint rows
    own = affinity.tensors(ts, {k: (images[i * 50:(i + 1) * 50], targets[k][i * 50:(i + 1) * 50])
                                for i, k in enumerate(("first", "second", "small"))},
                           (images[150:], {k: v[150:] for k, v in targets.items()}))
    labelled = own.labelled(own.y_train)
    assert labelled.shape == (150, 3) and (labelled.sum(1) == 1).all()
    assert labelled[:50, 0].all() and labelled[50:100, 1].all() and labelled[100:, 2].all()


@pytest.mark.parametrize(("train", "message"), [
    (lambda x, t: (x, {**t, "third": t["first"]}), "train: 'third' is not a task"),
    (lambda x, t: (x, {**t, "first": t["first"][:10]}), "train['first']: 10 rows of targets "
                                                       "for 60 rows"),
    (lambda x, t: [x], "train: give (x, {task: y})"),
    (lambda x, t: (x, {**t, "small": _partly_nan(t["small"])}), "tasks[2]: task 'small' has "
                                                              "NaN in part of row 3"),
])
def test_tensors_name_what_is_wrong(train, message):
    images, label = digits_images(60)
    with pytest.raises(InvalidTaskSet, match=re.escape(message)):
        affinity.tensors(taskset(), train(images, image_tasks(images, label, [0], 4)))


def _partly_nan(y: torch.Tensor) -> torch.Tensor:
    y = y.clone()
    y[3, 0, 0, 0] = torch.nan
    return y


def test_heads_and_losses_that_do_not_fit_are_named(device):
    images, label = digits_images(60)
    ts = taskset()
    data = affinity.tensors(ts, (images, image_tasks(images, label, [0], 4)))
    with pytest.raises(InvalidTaskSet, match=r"heads\['third'\]: not a task"):
        affinity.analyze(ts, data=data, trunk=trunk, heads={"third": decoder(4)})
    with pytest.raises(InvalidTaskSet, match=r"heads\['small'\]: the regression loss does not "
                                             r"run on the head's outputs \(2, 1, 3, 3\)"):
        affinity.analyze(ts, data=data, trunk=trunk, heads={"small": decoder(3)})
    with pytest.raises(InvalidTaskSet, match=r"losses\['small'\]: its loss does not run .* must "
                                             "give one value a row"):
        affinity.analyze(ts, data=data, trunk=trunk, losses={"small": F.mse_loss})
    with pytest.raises(ValueError, match="heads: Python code runs in this process only"):
        affinity.analyze(ts, data=data, heads={"small": decoder(4)}, executor=object())


def test_in_memory_task_sets_are_refused_where_data_must_be_loaded():
    with pytest.raises(InvalidTaskSet, match="data.in_memory: this task set's data comes from "
                                             "Python"):
        load_dataset(taskset())


class Branchy(nn.Module):
    """Data-dependent control flow, which vmap cannot run."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.layer = nn.Linear(width, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.layer(x.flatten(1))
        if h.sum() > 0:  # a Python branch on a value
            h = h * 0.5
        return torch.relu(h)


def test_a_module_vmap_cannot_run_trains_member_by_member(device):
    from affinity.backbones import register

    name = register("test:branchy", lambda shape: Branchy(int(np.prod(shape))))
    ts = taskset().model_copy(update={"model": taskset().model.model_copy(
        update={"backbone": name})})
    images, label = digits_images(200)
    data = affinity.tensors(ts, (images, image_tasks(images, label, [0, 6, 8, 9], 4))).to(device)
    net = MultiTaskNet(ts.model, data.input_shape, data.tasks).to(device)
    params = {k: v.detach()[None].repeat(2, *[1] * v.dim()) for k, v in net.named_parameters()}
    assert not vmappable(net.trunk, {k.removeprefix("trunk."): v for k, v in params.items()
                                     if k.startswith("trunk.")}, data.x_train[:4], False)
    members = [(0,), (1,), (0, 1, 2)]
    fast = run_subsets(ts, data, members, 0, device)
    slow = naive_subsets(ts, data, members, 0, device)
    np.testing.assert_allclose(fast.val_loss, slow, rtol=3e-4, atol=1e-6)


def test_affinity_tensors_is_the_function_whatever_was_imported_first():
    """No submodule shares the public function's name, so no import order can shadow it."""
    import subprocess
    import sys

    code = ("import affinity.in_memory, affinity, affinity.analysis\n"
            "from affinity import tensors\n"
            "assert callable(tensors) and tensors.__name__ == 'tensors', tensors\n")
    subprocess.run([sys.executable, "-c", code], check=True)
