"""Naive reference probes, as the TAG reference code does them: Python loops over tasks.

Slow on purpose: T backward passes for the per-task gradients, T deep copies for the
lookahead, one training run per subset. The tests check the batched probes against these,
and ``bench/probes.py`` times them.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch

from affinity.data import Dataset
from affinity.models import MultiTaskNet, TaskLosses
from affinity.probes.common import init_model, minibatches, validation_loss
from affinity.probes.joint import AffinitySample
from affinity.taskset import TaskSet


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
                    p -= eta * g[i, offset:offset + p.numel()].view_as(p)
                    offset += p.numel()
            after = losses(shifted(x), y)
            for j in range(n):
                lookahead[i, j] = 1 - after[j] / per_task[j].detach().clamp(min=1e-30)
        has = g.norm(dim=1) > 0
    return AffinitySample(cosine, lookahead, has[:, None] & has[None, :])


def naive_joint(taskset: TaskSet, data: Dataset, seed: int, device: torch.device,
                every: int = 1) -> np.ndarray:
    """Joint training with the naive affinity step every ``every`` steps; mean lookahead."""
    probe = taskset.probe
    model = init_model(taskset, data, seed).to(device)
    losses = TaskLosses(data.tasks)
    opt = torch.optim.Adam(model.parameters(), lr=probe.lr)
    total, count = 0.0, 0
    batches = minibatches(len(data.x_train), probe.batch_size, probe.epochs, seed, device)
    for step, (_, rows) in enumerate(batches):
        x, y = data.x_train[rows], data.y_train[rows]
        opt.zero_grad(set_to_none=True)
        if step % every == 0:
            total = total + naive_affinity_step(model, losses, x, y, probe.lookahead_lr).lookahead
            count += 1
        else:
            losses(model(x), y).sum().backward()
        opt.step()
    return (total / count).cpu().numpy()


def naive_subsets(taskset: TaskSet, data: Dataset, members: Sequence[tuple[int, ...]],
                  seed: int, device: torch.device) -> np.ndarray:
    """Train each subset's network on its own, one after another; best val losses (M, T)."""
    probe = taskset.probe
    losses = TaskLosses(data.tasks)
    out = np.full((len(members), data.n_tasks), np.nan)
    for m, subset in enumerate(members):
        subset = list(subset)
        model = init_model(taskset, data, seed).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=probe.lr)
        best = torch.full((data.n_tasks,), torch.inf, device=device)
        epoch_now = 0
        for epoch, rows in minibatches(len(data.x_train), probe.batch_size, probe.epochs, seed,
                                       device):
            if epoch != epoch_now:
                best = torch.minimum(best, validation_loss(model, losses, data))
                epoch_now = epoch
            opt.zero_grad(set_to_none=True)
            losses(model(data.x_train[rows]), data.y_train[rows])[subset].sum().backward()
            opt.step()
        best = torch.minimum(best, validation_loss(model, losses, data))
        out[m, subset] = best[subset].cpu().numpy()
    return out
