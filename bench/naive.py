"""Naive reference probes, as the TAG reference code does them: Python loops over tasks.

Slow on purpose: T backward passes for the per-task gradients, T deep copies for the
lookahead, one training run per subset. The tests check the batched probes against these,
and ``bench/targets/probes.py`` times them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import torch

from affinity.data import Dataset
from affinity.models import MultiTaskNet
from affinity.probes.common import init_model, validation_loss
from affinity.probes.joint import AffinitySample
from affinity.task_types import TaskLosses
from affinity.taskset import TaskSet
from affinity.training import EarlyStopping, Minibatches, make_optimizer, own_rows


def naive_affinity_step(model: MultiTaskNet, losses: TaskLosses, x: torch.Tensor,
                        y: torch.Tensor, eta: float) -> AffinitySample:
    """Same as ``joint.affinity_step`` with one backward per task and one copy per source."""
    per_task = losses(model(x), y)
    n = per_task.shape[0]
    trunk = [p for name, p in model.named_parameters() if name.startswith("trunk.")]
    flat = []
    for t in range(n):
        grads = torch.autograd.grad(per_task[t], trunk, retain_graph=True, allow_unused=True)
        flat.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                               for g, p in zip(grads, trunk, strict=True)]))
    per_task.sum().backward()
    g = torch.stack(flat)
    cosine = torch.zeros(n, n, device=x.device)
    lookahead = torch.zeros(n, n, device=x.device)
    with torch.no_grad():
        for i in range(n):
            for j in range(n):
                cosine[i, j] = torch.dot(g[i], g[j]) / (g[i].norm() * g[j].norm()).clamp(1e-30)
            shifted = copy.deepcopy(model)
            offset = 0
            for name, p in shifted.named_parameters():
                if name.startswith("trunk."):
                    p.sub_(eta * g[i, offset:offset + p.numel()].view_as(p))
                    offset += p.numel()
            after = losses(shifted(x), y)
            for j in range(n):
                lookahead[i, j] = 1 - after[j] / per_task[j].detach().clamp(min=1e-30)
        has = g.norm(dim=1) > 0
    return AffinitySample(cosine, lookahead, has[:, None] & has[None, :])


def _train(taskset: TaskSet, data: Dataset, seed: int, device: torch.device, subset: list[int],
           step: Callable[[MultiTaskNet, TaskLosses, torch.Tensor, torch.Tensor, int], None]
           ) -> np.ndarray:
    """One network on its own by the recipe, early-stopped on the mean validation loss of
    ``subset``; ``step`` computes the gradients of a minibatch. Val losses at its checkpoint."""
    spec = taskset.training
    model = init_model(taskset, data, seed).to(device)
    losses = TaskLosses(data.tasks)
    opt = make_optimizer(model.parameters(), spec)
    stopper = EarlyStopping(1, spec.patience, device, spec.min_delta)
    checkpoint = torch.full((data.n_tasks,), torch.nan)
    members = torch.zeros(1, data.n_tasks, device=device)
    members[0, subset] = 1.0
    batches = Minibatches(own_rows(data.labelled(data.y_train), members), spec.batch_size, seed)
    network = torch.zeros(1, dtype=torch.long, device=device)
    n = epochs = 0
    while True:
        batch = batches.next(network)
        x, y = batch.select(data.x_train, data.y_train)
        opt.zero_grad(set_to_none=True)
        step(model, losses, x, y, n)
        opt.step()
        n += 1
        if not batch.ends.item():
            continue
        epochs += 1
        val = validation_loss(model, losses, data)
        improved, stopped = stopper.update(val[subset].mean()[None])
        if improved.item():
            checkpoint = val.cpu()
        if stopped.item() or epochs >= spec.epochs:
            break
    return checkpoint.numpy()


def naive_joint(taskset: TaskSet, data: Dataset, seed: int, device: torch.device,
                every: int = 1) -> np.ndarray:
    """Joint training with the naive affinity step every ``every`` steps; mean lookahead."""
    samples: list[torch.Tensor] = []

    def step(model: MultiTaskNet, losses: TaskLosses, x: torch.Tensor, y: torch.Tensor,
             n: int) -> None:
        if n % every == 0:
            samples.append(naive_affinity_step(model, losses, x, y,
                                               taskset.probe.lookahead_lr).lookahead)
        else:
            losses(model(x), y).sum().backward()

    _train(taskset, data, seed, device, list(range(data.n_tasks)), step)
    return torch.stack(samples).mean(0).cpu().numpy()


def naive_subsets(taskset: TaskSet, data: Dataset, members: Sequence[tuple[int, ...]],
                  seed: int, device: torch.device) -> np.ndarray:
    """Train each subset's network on its own, one after another; checkpoint val losses (M, T)."""
    out = np.full((len(members), data.n_tasks), np.nan)
    for m, members_of in enumerate(members):
        subset = list(members_of)

        def step(model: MultiTaskNet, losses: TaskLosses, x: torch.Tensor, y: torch.Tensor,
                 n: int, subset: list[int] = subset) -> None:
            losses(model(x), y)[subset].sum().backward()

        out[m, subset] = _train(taskset, data, seed, device, subset, step)[subset]
    return out
