"""Memory of stacked networks, planned before a run: how many members train together and how
many validation rows one forward takes, so that a run fits the device (RAM on the CPU).

One member while it trains holds its weights, their gradients and the optimizer's state (4
copies of the weights at most: Adam's two moments), and the activations of a training batch
kept for the backward pass (about 3 times the forward's outputs, counted by running the real
network on two rows). Validation keeps no activations for a backward pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from affinity.data import Dataset
from affinity.probes.common import EVAL_ROWS, init_model
from affinity.taskset import InvalidTaskSet, TaskSet

WEIGHT_COPIES = 4  # weights, gradients, two Adam moments
TRAIN_ACTIVATION_FACTOR = 3  # outputs kept for backward, their gradients, temporaries
DEVICE_SHARE = 0.8  # of the free device memory (CUDA) a run may plan to use
RAM_SHARE = 0.5  # of the available RAM (CPU): the process holds the data and more besides


@dataclass(frozen=True)
class MemoryPlan:
    member_bytes: int
    """One member while it trains."""
    chunk: int
    """Members trained together in one stack."""
    eval_rows: int
    """Validation rows per forward of a chunk."""


def activation_bytes(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Bytes of the outputs of every leaf module for one input row (float32)."""
    total = 0

    def count(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal total
        if torch.is_tensor(output):
            total += output.numel()

    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            model(torch.zeros(2, *input_shape))
    finally:
        for h in hooks:
            h.remove()
    return 4 * total // 2


def available_bytes(device: torch.device) -> int | None:
    """Memory a run may plan to use on ``device``; None when it cannot be read."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * DEVICE_SHARE)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * RAM_SHARE)
    except (ValueError, OSError, AttributeError):
        return None


def plan(taskset: TaskSet, data: Dataset, n_members: int, budget: int | None) -> MemoryPlan:
    """Chunk size and validation rows for ``n_members`` networks within ``budget`` bytes (no
    limit when None). InvalidTaskSet, naming what to change, when one network cannot train."""
    model = init_model(taskset, data, 0)
    weights = 4 * sum(p.numel() for p in model.parameters())
    per_row = activation_bytes(model, data.input_shape)
    batch = taskset.training.batch_size
    member = WEIGHT_COPIES * weights + TRAIN_ACTIVATION_FACTOR * batch * per_row
    if budget is None:
        return MemoryPlan(member, n_members, EVAL_ROWS)
    if member > budget:
        raise InvalidTaskSet(
            f"training.batch_size: one network needs about {member / 2**30:.2f} GiB to train "
            f"on batches of {batch} rows "
            f"({weights * WEIGHT_COPIES / 2**30:.2f} GiB of weights and optimizer state, the "
            f"rest activations), more than the {budget / 2**30:.2f} GiB this device can give; "
            f"lower training.batch_size or the backbone's size (model.hidden, model.options)")
    chunk = max(1, min(n_members, budget // member))
    spare = budget - chunk * WEIGHT_COPIES * weights
    eval_rows = int(max(1, min(EVAL_ROWS, spare // max(1, chunk * per_row))))
    return MemoryPlan(member, chunk, eval_rows)
