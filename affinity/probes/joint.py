"""The joint probe: all tasks trained together, sampling gradient and lookahead affinities.

At a sampled step one batched backward (``is_grads_batched``) gives every task's gradient
on every parameter; their sum is the ordinary training gradient, so the step needs no
second backward. The trunk part of the per-task gradients gives the gradient cosines and the
lookahead update theta - eta * g_i of each source task i; the losses of all targets j after
all T updates come from one batched forward (``models.stacked_call``),
reusing the heads as they are (TAG updates only the shared parameters).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from affinity.data import Dataset
from affinity.models import MultiTaskNet, TaskLosses, stacked_call
from affinity.probes.common import init_model, minibatches
from affinity.taskset import TaskSet


@dataclass(frozen=True)
class AffinitySample:
    """Affinities of one sampled step; ``valid`` is False where a task had no label."""

    cosine: torch.Tensor  # (T, T)
    lookahead: torch.Tensor  # (T, T): 1 - L_j(theta - eta g_i) / L_j(theta)
    valid: torch.Tensor  # (T, T) bool


@dataclass(frozen=True)
class JointProbe:
    """Averages over the sampled steps of one joint run, each of shape (T, T)."""

    grad_cosine: np.ndarray
    conflict_rate: np.ndarray
    lookahead: np.ndarray
    n_samples: int


def affinity_step(model: MultiTaskNet, losses: TaskLosses, x: torch.Tensor, y: torch.Tensor,
                  eta: float, exact: bool = True) -> AffinitySample:
    """Per-task gradients in one batched backward; leaves their sum in ``p.grad``."""
    names, params = zip(*model.named_parameters(), strict=True)
    per_task = losses(model(x), y)
    n_tasks = per_task.shape[0]
    eye = torch.eye(n_tasks, device=x.device, dtype=per_task.dtype)
    grads = torch.autograd.grad(per_task, params, grad_outputs=eye, is_grads_batched=True)
    trunk: dict[str, torch.Tensor] = {}
    for name, p, g in zip(names, params, grads, strict=True):
        p.grad = g.sum(0)
        if name.startswith("trunk."):
            trunk[name.removeprefix("trunk.")] = g
    with torch.no_grad():
        dots = sum(g.reshape(n_tasks, -1) @ g.reshape(n_tasks, -1).T for g in trunk.values())
        norms = dots.diagonal().sqrt()
        cosine = dots / (norms[:, None] * norms[None, :]).clamp(min=1e-30)
        base = per_task.detach()
        if exact:
            shifted = {k: torch.add(model.trunk.get_parameter(k), g, alpha=-eta)
                       for k, g in trunk.items()}
            feats = stacked_call(model.trunk, shifted, x)
            after = losses(model.head(feats), y)  # (T sources, T targets)
        else:  # first order: L_j(theta - eta g_i) ~ L_j(theta) - eta g_i . g_j
            after = base[None, :] - eta * dots
        lookahead = 1 - after / base.clamp(min=1e-30)[None, :]
        has = norms > 0
        valid = has[:, None] & has[None, :]
    return AffinitySample(cosine, lookahead, valid)


def run_joint(taskset: TaskSet, data: Dataset, seed: int, device: torch.device, *,
              every: int | None = None, tick: Callable[[], None] | None = None) -> JointProbe:
    """Train all tasks jointly; sample affinities every ``every`` steps (default: task set's)."""
    probe = taskset.probe
    every = every or probe.affinity_every
    model = init_model(taskset, data, seed).to(device)
    losses = TaskLosses(data.tasks)
    opt = torch.optim.Adam(model.parameters(), lr=probe.lr)
    n = data.n_tasks
    # running sums of cosine, conflict (cosine < 0), lookahead, and the count of valid samples
    sums = torch.zeros(4, n, n, device=device)
    batches = minibatches(len(data.x_train), probe.batch_size, probe.epochs, seed, device)
    n_samples = 0
    for step, (_, rows) in enumerate(batches):
        x, y = data.x_train[rows], data.y_train[rows]
        opt.zero_grad(set_to_none=True)
        if step % every == 0:
            s = affinity_step(model, losses, x, y, probe.lookahead_lr,
                              exact=probe.lookahead == "exact")
            sums += torch.stack([s.cosine, s.cosine < 0, s.lookahead,
                                 torch.ones_like(s.cosine)]) * s.valid
            n_samples += 1
        else:
            losses(model(x), y).sum().backward()
        opt.step()
        if tick:
            tick()
    cosine, conflict, lookahead = (sums[:3] / sums[3].clamp(min=1)).double().cpu().numpy()
    return JointProbe(cosine, conflict, lookahead, n_samples)
