"""Your own trunk from Python: ``analyze(taskset, trunk=factory)`` with a network defined in
the calling code (no package, no entry point), BatchNorm included."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

import affinity
from affinity.backbones import register
from affinity.data import load_dataset
from affinity.probes.subsets import run_subsets
from affinity.taskset import InvalidTaskSet, parse_taskset
from bench.naive import naive_subsets


class TinyResNet(nn.Module):
    """A stem, one residual block with BatchNorm, global pooling: features (N, channels)."""

    def __init__(self, in_channels: int, channels: int = 6) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1),
                                  nn.BatchNorm2d(channels), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1),
                                   nn.BatchNorm2d(channels))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        return self.pool(torch.relu(h + self.block(h)))


def tiny_resnet(input_shape: tuple[int, ...], channels: int = 6) -> nn.Module:
    return TinyResNet(input_shape[0], channels)


@pytest.fixture
def images(tmp_path):
    digits = load_digits()
    d = digits.target[:400]
    np.savez(tmp_path / "digits.npz", X=(digits.images[:400, None] / 16.0).astype(np.float32),
             even=(d % 2 == 0).astype(float), large=(d >= 5).astype(float),
             zero=(d == 0).astype(float))
    return parse_taskset({
        "data": {"path": str(tmp_path / "digits.npz")},
        "tasks": [{"name": t, "type": "binary"} for t in ("even", "large", "zero")],
        "training": {"epochs": 3, "batch_size": 64, "patience": 3, "optimizer": "sgd",
                     "lr": 0.02},
        "probe": {"transfer_steps": 20}, "budget": {"training_runs": 30}})


def test_analyze_runs_a_trunk_defined_in_python(images, device):
    result = affinity.analyze(images, trunk=tiny_resnet, device=device)
    assert result.tasks == ["even", "large", "zero"]
    assert set(result.affinity) == {"grad_cosine", "lookahead", "cka", "transfer", "pairwise"}
    assert all(np.isfinite(m.matrix).all() for m in result.affinity.values())
    assert result.meta.taskset["model"] == {"backbone": "python:tiny_resnet", "hidden": None,
                                               "options": {}}
    assert [g.k for g in result.groupings] == [1, 2, 3] and result.verdict


def test_its_stacked_networks_equal_the_one_by_one_fallback(images, device):
    """BatchNorm's running statistics per member: every stacked network is the network
    trained alone (the reference loop), to float tolerance."""
    name = register("test:tiny-resnet", functools.partial(tiny_resnet, channels=4))
    taskset = images.model_copy(update={"model": images.model.model_copy(
        update={"backbone": name})})
    data = load_dataset(taskset).to(device)
    members = [(0,), (1,), (2,), (0, 1), (0, 1, 2)]
    fast = run_subsets(taskset, data, members, 0, device)
    slow = naive_subsets(taskset, data, members, 0, device)
    np.testing.assert_allclose(fast.val_loss, slow, rtol=3e-4, atol=1e-6)
    means = fast.params["trunk.stem.1.running_mean"]
    assert means.shape == (5, 4) and (means[0] != means[1]).any()  # one set per member


def test_a_trunk_that_does_not_fit_is_refused_naming_the_field(images):
    with pytest.raises(InvalidTaskSet, match="model.backbone: 'python:.*' does not run on "
                                             r"inputs of shape \(1, 8, 8\)"):
        affinity.analyze(images, trunk=lambda input_shape: nn.Conv2d(1, 4, 3), device="cpu")
    with pytest.raises(ValueError, match="backbone 'mlp' is installed"):
        register("mlp", tiny_resnet)


def test_the_extending_docs_example_runs_as_written(tmp_path, monkeypatch):
    """docs/extending.md's "Your own network" block, executed as it stands (in a scratch
    folder)."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "extending.md").read_text()
    section = text[text.index("## Your own network"):]
    block = section[section.index("```python") + len("```python"):]
    block = block[:block.index("```")]
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block, "extending.md", "exec"), scope)  # noqa: S102  # the documented example
    result = scope["result"]
    assert result.tasks == ["even", "large", "small"] and result.verdict
    assert result.meta.cost.budget == 20
    assert result.meta.taskset["data"]["in_memory"] is True
