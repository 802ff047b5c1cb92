"""Subset probes: one network per task subset (single tasks, pairs, ...), trained as one model.

The members' weights are stacked (``torch.func.stack_module_state``) and run by
``models.stacked_call`` over the shared minibatch, so M networks cost one batched forward
and backward a step. The loss is the sum of every member's own tasks' losses; members share
no parameter, and Adam is elementwise, so each member follows exactly the updates it would
get if trained alone. All members of a seed start from the same weights and see the same
minibatches (common random numbers), so differences between them come from their tasks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.func import stack_module_state

from affinity.data import Dataset
from affinity.models import MultiTaskNet, TaskLosses, stacked_call
from affinity.probes.common import init_model, minibatches, validation_loss
from affinity.taskset import TaskSet


@dataclass
class SubsetProbe:
    """Trained members of one seed.

    ``val_loss[m, t]`` is member m's best (over epoch ends) validation loss on task t, NaN
    where t is not in the member. ``params`` are the stacked trained weights.
    """

    members: list[tuple[int, ...]]
    val_loss: np.ndarray
    params: dict[str, torch.Tensor]
    initial: MultiTaskNet

    def index(self, subset: Sequence[int]) -> int:
        return self.members.index(tuple(sorted(subset)))

    def features(self, member_ids: Sequence[int], x: torch.Tensor) -> torch.Tensor:
        """Trunk features of the chosen members, shape (len(member_ids), n_rows, width)."""
        ids = torch.as_tensor(list(member_ids), device=x.device)
        trunk = {k.removeprefix("trunk."): v[ids] for k, v in self.params.items()
                 if k.startswith("trunk.")}
        with torch.no_grad():
            return stacked_call(self.initial.trunk, trunk, x)


def member_mask(members: Sequence[tuple[int, ...]], n_tasks: int,
                device: torch.device) -> torch.Tensor:
    mask = torch.zeros(len(members), n_tasks, device=device)
    for m, subset in enumerate(members):
        mask[m, list(subset)] = 1.0
    return mask


def run_subsets(taskset: TaskSet, data: Dataset, members: Sequence[tuple[int, ...]], seed: int,
                device: torch.device, *, tick: Callable[[], None] | None = None) -> SubsetProbe:
    """Train one network per subset in ``members``, all at once."""
    probe = taskset.probe
    members = [tuple(sorted(m)) for m in members]
    initial = init_model(taskset, data, seed).to(device)
    params, _ = stack_module_state([copy.deepcopy(initial) for _ in members])  # no buffers
    losses = TaskLosses(data.tasks)
    mask = member_mask(members, data.n_tasks, device)
    opt = torch.optim.Adam(params.values(), lr=probe.lr)
    best = torch.full((len(members), data.n_tasks), torch.inf, device=device)
    batches = minibatches(len(data.x_train), probe.batch_size, probe.epochs, seed, device)

    def forward(x: torch.Tensor) -> torch.Tensor:
        return stacked_call(initial, params, x)

    epoch_now = 0
    for epoch, rows in batches:
        if epoch != epoch_now:
            best = torch.minimum(best, validation_loss(forward, losses, data))
            epoch_now = epoch
        opt.zero_grad(set_to_none=True)
        (losses(forward(data.x_train[rows]), data.y_train[rows]) * mask).sum().backward()
        opt.step()
        if tick:
            tick()
    best = torch.minimum(best, validation_loss(forward, losses, data))
    val = torch.where(mask.bool(), best, torch.nan).cpu().numpy()
    return SubsetProbe(members, val, {k: v.detach() for k, v in params.items()}, initial)
