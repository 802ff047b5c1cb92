"""Subset probes: one network per task subset (single tasks, pairs, ...), trained as one model.

Every network trains by the task set's recipe (``training``) and stops on its own: its
checkpoint is the epoch of its least mean validation loss over its tasks, and all its tasks
are scored at that one checkpoint (a network is one checkpoint).

Each network trains on its own rows, those labelled for one of its tasks (a network of tasks
with rows of their own sees only theirs, as it would if trained alone). The members' weights
are stacked (``torch.func.stack_module_state``) and run by ``models.stacked_call``, on the
shared minibatch when the members have the same rows, else each on its own, so M networks
cost one batched forward and backward a step. The loss is the sum of every member's own
tasks' losses; members share no parameter, and Adam is elementwise, so each member follows
exactly the updates it would get if trained alone. All members of a seed start from the same
weights and draw their minibatches from the same shuffles (common random numbers), so
differences between them come from their tasks.
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.func import stack_module_state

from affinity.data import Dataset
from affinity.models import MultiTaskNet, stacked_call
from affinity.probes.common import EVAL_ROWS, init_model, validation_loss
from affinity.task_types import TaskLosses
from affinity.taskset import TaskSet
from affinity.training import EarlyStopping, Minibatches, compact, make_optimizer, own_rows


@dataclass
class SubsetProbe:
    """Trained members of one seed, each early-stopped on its own mean validation loss.

    ``val_loss[m, t]`` is member m's validation loss on task t at m's checkpoint (the epoch
    of its least mean validation loss over its tasks), NaN where t is not in the member.
    ``epochs[m]`` is how many epochs m trained (each a pass over m's own rows),
    ``member_steps[m]`` how many steps; ``params`` are the stacked checkpoint weights and
    buffers (empty when not kept). ``steps`` counts
    the stack's steps, ``network_steps`` the steps of every member summed; ``cut`` the
    members still training when the stage's deadline passed (scored at their best epoch so
    far).
    """

    members: list[tuple[int, ...]]
    val_loss: np.ndarray
    params: dict[str, torch.Tensor]
    initial: MultiTaskNet
    epochs: np.ndarray
    member_steps: np.ndarray
    steps: int = 0
    network_steps: int = 0
    cut: int = 0

    def index(self, subset: Sequence[int]) -> int:
        return self.members.index(tuple(sorted(subset)))

    def features(self, member_ids: Sequence[int], x: torch.Tensor) -> torch.Tensor:
        """Trunk features of the chosen members, shape (len(member_ids), n_rows, width)."""
        ids = torch.as_tensor(list(member_ids), device=x.device)
        trunk = {k.removeprefix("trunk."): v[ids] for k, v in self.params.items()
                 if k.startswith("trunk.")}
        with torch.no_grad():
            return stacked_call(self.initial.trunk, trunk, x)


def merge_probes(parts: list[SubsetProbe], device: torch.device | str = "cpu") -> SubsetProbe:
    """One SubsetProbe on ``device`` from parts of one seed (same initial network)."""
    return SubsetProbe(
        members=[m for p in parts for m in p.members],
        val_loss=np.concatenate([p.val_loss for p in parts]),
        params={k: torch.cat([p.params[k].to(device) for p in parts]) for k in parts[0].params},
        initial=parts[0].initial.to(device),
        epochs=np.concatenate([p.epochs for p in parts]),
        member_steps=np.concatenate([p.member_steps for p in parts]),
        steps=sum(p.steps for p in parts),
        network_steps=sum(p.network_steps for p in parts),
        cut=sum(p.cut for p in parts),
    )


def member_mask(members: Sequence[tuple[int, ...]], n_tasks: int,
                device: torch.device) -> torch.Tensor:
    mask = torch.zeros(len(members), n_tasks, device=device)
    for m, subset in enumerate(members):
        mask[m, list(subset)] = 1.0
    return mask


def run_subsets(taskset: TaskSet, data: Dataset, members: Sequence[tuple[int, ...]], seed: int,
                device: torch.device, *, tick: Callable[[int], None] | None = None,
                keep_params: bool = True, eval_rows: int = EVAL_ROWS,
                max_steps: int | None = None, deadline: float | None = None) -> SubsetProbe:
    """Train one network per subset in ``members``, all at once, by the task set's recipe.

    ``tick(n)`` is called after every step with the number of networks still training.
    Networks that stop early leave the stack, so the step cost falls as they do. Validation
    runs over chunks of ``eval_rows`` rows (``memory.py`` sizes them to the device).
    ``max_steps`` stops the stack after that many steps (to time it). ``deadline`` (a
    ``time.time()``): at the first validation after it, once every member has finished an
    epoch, the stack stops and each member keeps its best epoch so far (``cut`` counts them).
    """
    spec = taskset.training
    members = [tuple(sorted(m)) for m in members]
    initial = init_model(taskset, data, seed).to(device).eval()  # a template: state is stacked
    params, buffers = stack_module_state([copy.deepcopy(initial) for _ in members])
    losses = TaskLosses(data.tasks)
    mask = member_mask(members, data.n_tasks, device)
    own = own_rows(data.labelled(data.y_train), mask)
    if buffers and not bool((own == own[:1]).all()):
        # running statistics would see the padding of a stack with rows of its own: train
        # the members with the same rows together, one such group after another
        groups: dict[bytes, list[int]] = {}
        for m, r in enumerate(own.cpu().numpy()):
            groups.setdefault(np.packbits(r).tobytes(), []).append(m)
        parts = [run_subsets(taskset, data, [members[m] for m in g], seed, device, tick=tick,
                             keep_params=keep_params, eval_rows=eval_rows, deadline=deadline)
                 for g in groups.values()]
        merged = merge_probes(parts, device)
        order = np.argsort([m for g in groups.values() for m in g])
        return SubsetProbe(members, merged.val_loss[order],
                           {k: v[torch.as_tensor(order, device=v.device)]
                            for k, v in merged.params.items()},
                           merged.initial, merged.epochs[order],
                           merged.member_steps[order], merged.steps,
                           merged.network_steps, merged.cut)
    batches = Minibatches(own, spec.batch_size, seed)
    opt = make_optimizer(params.values(), spec)
    stopper = EarlyStopping(len(members), spec.patience, device, spec.min_delta)
    active = torch.arange(len(members), device=device)
    val_loss = torch.full((len(members), data.n_tasks), torch.nan, device=device)
    best = {k: v.detach().clone() for k, v in {**params, **buffers}.items()} \
        if keep_params else {}
    epochs = torch.zeros(len(members), dtype=torch.long, device=device)
    member_steps = np.zeros(len(members), dtype=int)
    steps = network_steps = cut = 0
    while len(active):
        batch = batches.next(active)
        x, y = batch.select(data.x_train, data.y_train)
        opt.zero_grad(set_to_none=True)
        out = stacked_call(initial, {**params, **buffers}, x,
                           per_member=batch.valid is not None, training=True)
        (losses(out, y) * mask).sum().backward()
        opt.step()
        steps, network_steps = steps + 1, network_steps + len(active)
        if tick:
            tick(len(active))
        if max_steps is not None and steps >= max_steps:
            break
        if not batch.ends.any():
            continue
        ends = batch.ends
        epochs[active[ends]] += 1
        state = {**params, **buffers}
        ending = state if ends.all() else {k: v[ends] for k, v in state.items()}
        val = torch.full((len(active), data.n_tasks), torch.nan, device=device)
        val[ends] = validation_loss(functools.partial(stacked_call, initial, ending), losses,
                                    data, eval_rows)
        improved, stopped = stopper.update((val * mask).sum(1) / mask.sum(1), ends)
        stopped |= ends & (epochs[active] >= spec.epochs)
        if improved.any():
            rows = active[improved]
            val_loss[rows] = torch.where(mask[improved].bool(), val[improved], torch.nan)
            for k in best:
                best[k][rows] = state[k].detach()[improved]
        if stopped.all():
            break
        if deadline is not None and time.time() > deadline and bool((epochs[active] > 0).all()):
            cut = int((~stopped).sum())
            break
        if stopped.any():
            member_steps[active[stopped].cpu().numpy()] = steps
            keep = ~stopped
            params, opt = compact(params, opt, keep)
            buffers = {k: v[keep] for k, v in buffers.items()}
            active, mask = active[keep], mask[keep]
            stopper.keep(keep)
    member_steps[active.cpu().numpy()] = steps
    return SubsetProbe(members, val_loss.cpu().numpy(), best, initial, epochs.cpu().numpy(),
                       member_steps, steps, network_steps, cut)
