"""What every probe shares: seeded initialisation and the validation loss."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import torch
from torch import nn

from affinity.data import Dataset
from affinity.models import Heads, MultiTaskNet
from affinity.task_types import TaskLosses
from affinity.taskset import TaskSet


def init_model(taskset: TaskSet, data: Dataset, seed: int) -> MultiTaskNet:
    """The network every probe of seed ``seed`` starts from (same weights for all probes).

    Each task's head is drawn from a generator keyed by the seed and the task's label column
    and type (an own head: by its name), so a task starts from the same head whatever the
    order of the tasks (and two names for the same labels start alike).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MultiTaskNet(taskset.model, data.input_shape, data.tasks)
    linear, width = model.linear_head, model.width
    bound = width ** -0.5
    start = 0
    with torch.no_grad():
        for i, task in enumerate(data.tasks):
            if task.head is not None:
                key = zlib.crc32(f"head\0{task.name}".encode())
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed * 1_000_003 + key)
                    fresh = task.head(width)
                assert isinstance(model.head, Heads)  # a task with its own head
                model.head.own[str(i)].load_state_dict(fresh.state_dict())
                continue
            assert linear is not None  # a task without its own head has a linear one
            key = zlib.crc32(f"{task.column}\0{task.type}".encode())
            gen = torch.Generator().manual_seed(seed * 1_000_003 + key)
            rows = slice(start, start + task.n_outputs)
            for p in (linear.weight, linear.bias):
                p[rows] = torch.rand(p[rows].shape, generator=gen) * 2 * bound - bound
            start += task.n_outputs
    return model


EVAL_ROWS = 4096  # validation rows per forward, to bound memory


def validation_loss(forward: Callable[[torch.Tensor], torch.Tensor], losses: TaskLosses,
                    data: Dataset, rows: int = EVAL_ROWS) -> torch.Tensor:
    """Mean validation loss per task of ``forward``'s outputs, shape (..., n_tasks), over
    chunks of at most ``rows`` validation rows (a module runs in eval mode meanwhile)."""
    module = forward if isinstance(forward, nn.Module) else None
    was = module.training if module is not None else False
    if module is not None:
        module.eval()
    try:
        total = _validation_sums(forward, losses, data, rows)
    finally:
        if module is not None:
            module.train(was)
    return total / data.labelled(data.y_val).sum(0).clamp(min=1)


def _validation_sums(forward: Callable[[torch.Tensor], torch.Tensor], losses: TaskLosses,
                     data: Dataset, rows: int) -> torch.Tensor:
    parts = []
    with torch.no_grad():
        for start in range(0, len(data.x_val), rows):
            sums, _ = losses.sums(forward(data.x_val[start:start + rows]),
                                  data.y_val[start:start + rows])
            parts.append(sums)
    return torch.stack(parts).sum(0)
