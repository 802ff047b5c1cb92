"""What every probe shares: seeded initialisation and the minibatch schedule."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from affinity.data import Dataset
from affinity.models import MultiTaskNet
from affinity.taskset import TaskSet


def init_model(taskset: TaskSet, data: Dataset, seed: int) -> MultiTaskNet:
    """The network every probe of seed ``seed`` starts from (same weights for all probes)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MultiTaskNet(taskset.model, data.input_shape, data.tasks)


def minibatches(n_rows: int, batch_size: int, epochs: int, seed: int,
                device: torch.device) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(epoch, row indices)`` of a seeded shuffle, the same for every probe of a seed."""
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        order = torch.randperm(n_rows, generator=gen).to(device)
        for start in range(0, n_rows, batch_size):
            yield epoch, order[start:start + batch_size]


def n_steps(n_rows: int, batch_size: int, epochs: int) -> int:
    return epochs * -(-n_rows // batch_size)
