"""The joint probe: all tasks trained together by the recipe, sampling gradient and lookahead
affinities over the whole run; the run is also the seed's all-in-one network.

At a sampled step one batched backward (``is_grads_batched``) gives every task's gradient
on every parameter; their sum is the ordinary training gradient, so the step needs no
second backward. The trunk part of the per-task gradients gives the gradient cosines and the
lookahead update theta - eta * g_i of each source task i; the losses of all targets j after
all T updates come from one batched forward (``models.stacked_call``),
reusing the heads as they are (TAG updates only the shared parameters).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from affinity.data import Dataset
from affinity.models import MultiTaskNet, grouped_on_cpu, stacked_call
from affinity.probes.common import init_model, validation_loss
from affinity.task_types import TaskLosses
from affinity.taskset import TaskSet
from affinity.training import EarlyStopping, Minibatches, make_optimizer, own_rows


@dataclass(frozen=True)
class AffinitySample:
    """Affinities of one sampled step; ``valid`` is False where a task had no label."""

    cosine: torch.Tensor  # (T, T)
    lookahead: torch.Tensor  # (T, T): 1 - L_j(theta - eta g_i) / L_j(theta)
    valid: torch.Tensor  # (T, T) bool


@dataclass(frozen=True)
class JointProbe:
    """One all-in-one training run by the recipe, with affinities sampled along it.

    Affinities are means over the sampled steps, each of shape (T, T). ``val_loss`` is each
    task's validation loss at the network's checkpoint (least mean validation loss): the
    all-in-one baseline of this seed. ``unit_seconds`` is the wall time the run would have
    taken without the sampling (one full training of one network), ``epochs`` and ``steps``
    its length.
    """

    grad_cosine: np.ndarray
    conflict_rate: np.ndarray
    lookahead: np.ndarray
    n_samples: int
    val_loss: np.ndarray
    epochs: int
    unit_seconds: float
    steps: int


def affinity_step(model: MultiTaskNet, losses: TaskLosses, x: torch.Tensor, y: torch.Tensor,
                  eta: float, exact: bool = True) -> AffinitySample:
    """Per-task gradients in one batched backward (one backward a task for convolutions on
    the CPU: ``models.grouped_on_cpu``); leaves their sum in ``p.grad``."""
    names, params = zip(*model.named_parameters(), strict=True)
    per_task = losses(model(x), y)
    n_tasks = per_task.shape[0]
    if grouped_on_cpu(model.trunk, x):
        rows = [torch.autograd.grad(per_task[t], params, retain_graph=t < n_tasks - 1,
                                    allow_unused=True, materialize_grads=True)
                for t in range(n_tasks)]
        grads = tuple(torch.stack(g) for g in zip(*rows, strict=True))
    else:
        eye = torch.eye(n_tasks, device=x.device, dtype=per_task.dtype)
        grads = torch.autograd.grad(per_task, params, grad_outputs=eye, is_grads_batched=True)
    trunk: dict[str, torch.Tensor] = {}
    for name, p, g in zip(names, params, grads, strict=True):
        p.grad = g.sum(0)
        if name.startswith("trunk."):
            trunk[name.removeprefix("trunk.")] = g
    cosine, dots, valid = gradient_products(list(trunk.values()))
    with torch.no_grad():
        base = per_task.detach()
        if exact:
            shifted = {k: torch.add(model.trunk.get_parameter(k), g, alpha=-eta)
                       for k, g in trunk.items()}
            # in train mode, as the step itself; running statistics go to throwaway copies
            shifted.update({k: b.expand(n_tasks, *b.shape).clone()
                            for k, b in model.trunk.named_buffers()})
            feats = stacked_call(model.trunk, shifted, x, training=True)
            after = losses(model.head(feats), y)  # (T sources, T targets)
        else:  # first order: L_j(theta - eta g_i) ~ L_j(theta) - eta g_i . g_j
            after = base[None, :] - eta * dots
        lookahead = 1 - after / base.clamp(min=1e-30)[None, :]
    return AffinitySample(cosine, lookahead, valid)


def gradient_products(grads: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor,
                                                               torch.Tensor]:
    """Cosines (T, T) and dot products (T, T) of per-task gradients, given as tensors of
    shape (T, *parameter shape), and where both tasks had a gradient (bool (T, T))."""
    with torch.no_grad():
        n_tasks = grads[0].shape[0]
        dots = torch.stack([g.reshape(n_tasks, -1) @ g.reshape(n_tasks, -1).T
                            for g in grads]).sum(0)
        norms = dots.diagonal().sqrt()
        cosine = dots / (norms[:, None] * norms[None, :]).clamp(min=1e-30)
        has = norms > 0
    return cosine, dots, has[:, None] & has[None, :]


def run_joint(taskset: TaskSet, data: Dataset, seed: int, device: torch.device, *,
              every: int | None = None, tick: Callable[[int], None] | None = None) -> JointProbe:
    """Train all tasks jointly by the recipe, early-stopped on the mean validation loss;
    sample affinities every ``every`` steps (default: the task set's) until it stops."""
    spec = taskset.training
    every = every or taskset.probe.affinity_every
    model = init_model(taskset, data, seed).to(device)
    losses = TaskLosses(data.tasks)
    opt = make_optimizer(model.parameters(), spec)
    stopper = EarlyStopping(1, spec.patience, device, spec.min_delta)
    n = data.n_tasks
    # running sums of cosine, conflict (cosine < 0), lookahead, and the count of valid samples
    sums = torch.zeros(4, n, n, device=device)
    n_samples = step = epochs = 0
    sampling_seconds = plain_seconds = 0.0
    val_loss = torch.full((n,), torch.nan, device=device)
    started = time.perf_counter()
    batches = Minibatches(own_rows(data.labelled(data.y_train), torch.ones(1, n, device=device)),
                          spec.batch_size, seed)
    network = torch.zeros(1, dtype=torch.long, device=device)
    while True:
        batch = batches.next(network)
        x, y = batch.select(data.x_train, data.y_train)
        opt.zero_grad(set_to_none=True)
        step_start = time.perf_counter()
        if step % every == 0:
            s = affinity_step(model, losses, x, y, taskset.probe.lookahead_lr,
                              exact=taskset.probe.lookahead == "exact")
            sums += torch.stack([s.cosine, s.cosine < 0, s.lookahead,
                                 torch.ones_like(s.cosine)]) * s.valid
            n_samples += 1
            opt.step()
            sampling_seconds += time.perf_counter() - step_start
        else:
            losses(model(x), y).sum().backward()
            opt.step()
            plain_seconds += time.perf_counter() - step_start
        step += 1
        if tick:
            tick(1)
        if not batch.ends.item():
            continue
        epochs += 1
        val = validation_loss(model, losses, data)
        improved, stopped = stopper.update(val.mean()[None])
        if improved.item():
            val_loss = val
        if stopped.item() or epochs >= spec.epochs:
            break
    plain_step = plain_seconds / max(1, step - n_samples) if step > n_samples else 0.0
    unit = time.perf_counter() - started - sampling_seconds + n_samples * plain_step
    cosine, conflict, lookahead = (sums[:3] / sums[3].clamp(min=1)).double().cpu().numpy()
    return JointProbe(cosine, conflict, lookahead, n_samples, val_loss.double().cpu().numpy(),
                      epochs, unit, step)
