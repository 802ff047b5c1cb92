"""Transfer affinity: freeze the trunk trained on task i, fit a fresh head for task j.

The gain is relative to the same head fit on the untrained trunk the probes started from:
T[i][j] = (L_j(initial trunk) - L_j(trunk of i)) / L_j(initial trunk), validation rows.
All (T + 1) x T heads are linear and fit together by full-batch Adam on frozen features;
each head's loss is its best validation loss over checkpoints (early stopping, as the subset
probes do), so a head that overfits an easy task is not scored by its overfit state.
"""

from __future__ import annotations

import numpy as np
import torch

from affinity.measures.base import Measure, ProbeRun
from affinity.task_types import TaskLosses

HEAD_LR = 0.05
CHECK_EVERY = 10  # steps between validation checkpoints


def fit_heads(train: torch.Tensor, y_train: torch.Tensor, val: torch.Tensor,
              y_val: torch.Tensor, losses: TaskLosses, n_outputs: int,
              steps: int) -> torch.Tensor:
    """Fit one linear head per (representation, task); return best validation losses (K, T).

    train, val : tensors of shape (K, n_rows, width), K frozen representations.
    """
    k, _, width = train.shape
    # One scale per representation (not per feature: a unit dead on the training rows but
    # alive on validation rows would blow up)
    mean = train.mean(1, keepdim=True)
    std = (train - mean).pow(2).mean(dim=(1, 2), keepdim=True).sqrt().clamp(min=1e-6)
    train, val = (train - mean) / std, (val - mean) / std
    weight = torch.zeros(k, width, n_outputs, device=train.device, requires_grad=True)
    bias = torch.zeros(k, 1, n_outputs, device=train.device, requires_grad=True)
    opt = torch.optim.Adam([weight, bias], lr=HEAD_LR)
    best = torch.full((k, len(losses.tasks)), torch.inf, device=train.device)
    for step in range(1, steps + 1):
        opt.zero_grad(set_to_none=True)
        losses(torch.baddbmm(bias, train, weight), y_train).sum().backward()
        opt.step()
        if step % CHECK_EVERY == 0 or step == steps:
            with torch.no_grad():
                best = torch.minimum(best, losses(torch.baddbmm(bias, val, weight), y_val))
    return best


def transfer_matrix(run: ProbeRun) -> np.ndarray:
    probe, data, n = run.subset_probe, run.data, run.data.n_tasks
    singles = [probe.index([t]) for t in range(n)]
    with torch.no_grad():
        start = probe.initial.trunk
        train = torch.cat([probe.features(singles, data.x_train), start(data.x_train)[None]])
        val = torch.cat([probe.features(singles, data.x_val), start(data.x_val)[None]])
    losses = TaskLosses(data.tasks)
    n_out = sum(t.n_outputs for t in data.tasks)
    val_loss = fit_heads(train, data.y_train, val, data.y_val, losses, n_out,
                         run.taskset.probe.transfer_steps)
    base = val_loss[-1]
    return ((base[None, :] - val_loss[:-1]) / base.clamp(min=1e-12)[None, :]).cpu().numpy()


TRANSFER = Measure(
    name="transfer",
    needs=frozenset({"singles"}),
    compute=transfer_matrix,
    description="relative drop of j's validation loss with a linear head on i's frozen trunk, "
                "against the same head on the untrained trunk",
)
