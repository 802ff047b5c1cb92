"""Linearised gain, an experiment: each pair's gain estimated from the all-in-one run, no
pair trained (``bench/studies/one_run.py`` scores it against the truth).

In the spirit of GRAD-TAG (Li et al., KDD 2024). Around the all-in-one network's checkpoint theta, a
network's outputs are linear in a small parameter shift: f(x; theta + d) ~ f(x; theta) + J(x) d.
The trunk's per-row Jacobians J(x) (``torch.func``) are projected onto ``DIRECTIONS`` random
Gaussian directions P, so fine-tuning a group from the checkpoint is a small convex problem:
one trunk shift z (d = P z) shared by the group's tasks, and each task's own linear
correction of its outputs from the checkpoint's features (its head). A task alone is the
group of one. Every group of one size is fit at once by full-batch Adam on a sample of the
training rows, each (group, task) scored by its least validation loss over checkpoints, as
the transfer measure's heads are. G[i][j] = (L_j alone - L_j with i) / L_j alone.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import torch
from torch.func import functional_call, jacrev, vmap

from affinity.measures.base import ProbeRun
from affinity.models import MultiTaskNet
from affinity.task_types import TaskLosses

DIRECTIONS = 64
"""Random directions the trunk's Jacobians are projected onto."""
FIT_ROWS = 2048
"""Training rows (a seeded sample) the groups are fit on; as many validation rows score them."""
STEP_LR = 0.05
CHECK_EVERY = 10  # steps between validation checkpoints
JACOBIAN_ELEMENTS = 2**24  # per-row Jacobian entries held at once (rows x outputs x params)
GROUP_ELEMENTS = 2**24  # output entries of the groups fit at once (groups x rows x outputs)


def sample_rows(labelled: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """At most ``n`` rows labelled for some task, drawn by ``seed`` (sorted)."""
    rows = labelled.any(1).nonzero().squeeze(1).cpu()
    if len(rows) > n:
        gen = torch.Generator().manual_seed(seed)
        rows = rows[torch.randperm(len(rows), generator=gen)[:n]].sort().values
    return rows.to(labelled.device)


def projected_jacobians(model: MultiTaskNet, x: torch.Tensor, seed: int,
                        directions: int = DIRECTIONS) -> torch.Tensor:
    """J(x) P for every row of ``x``: the outputs' Jacobian on the trunk's parameters,
    projected onto ``directions`` Gaussian directions drawn by ``seed``; shape
    (rows, outputs, directions). The model is in eval mode meanwhile."""
    trunk = {f"trunk.{k}": v.detach() for k, v in model.trunk.named_parameters()}
    rest = {k: v.detach() for k, v in model.named_parameters() if k not in trunk}
    rest |= dict(model.named_buffers())
    gen = torch.Generator().manual_seed(seed)
    scale = directions ** -0.5
    proj = {k: (torch.randn(v.numel(), directions, generator=gen) * scale).to(v.device, v.dtype)
            for k, v in trunk.items()}

    def outputs(params: dict[str, torch.Tensor], row: torch.Tensor) -> torch.Tensor:
        return functional_call(model, {**params, **rest}, (row[None],))[0].flatten()

    jac = vmap(jacrev(outputs), in_dims=(None, 0))
    n_params = sum(v.numel() for v in trunk.values())
    n_out = int(model(x[:1]).numel())
    chunk = max(1, JACOBIAN_ELEMENTS // max(1, n_out * n_params))
    was = model.training
    model.eval()
    try:
        parts = []
        for start in range(0, len(x), chunk):
            rows = x[start:start + chunk]
            with torch.no_grad():
                per_param = jac(trunk, rows)
                parts.append(sum(per_param[k].reshape(len(rows), n_out, -1) @ proj[k]
                                 for k in trunk))
    finally:
        model.train(was)
    return torch.cat(parts)


class _Linearised:
    """The linearised network on a set of rows: outputs, features and projected Jacobians
    at the checkpoint; the Jacobians and the centred features each at one scale, taken from
    the rows of ``like`` where given (the training rows', for the validation rows)."""

    def __init__(self, model: MultiTaskNet, x: torch.Tensor, seed: int,
                 like: _Linearised | None = None) -> None:
        was = model.training
        model.eval()
        with torch.no_grad():
            features = model.trunk(x).flatten(1)
            self.out = model.head(features).flatten(1)
        model.train(was)
        jac = projected_jacobians(model, x, seed, DIRECTIONS)
        if like is None:
            self.jac_scale = jac.pow(2).mean().sqrt().clamp(min=1e-12)
            self.mean = features.mean(0)
            self.scale = (features - self.mean).pow(2).mean().sqrt().clamp(min=1e-6)
        else:
            self.jac_scale, self.mean, self.scale = like.jac_scale, like.mean, like.scale
        self.jac = jac / self.jac_scale
        features = (features - self.mean) / self.scale
        self.features = torch.cat([features, torch.ones_like(features[:, :1])], 1)

    def shifted(self, shift: torch.Tensor, heads: torch.Tensor) -> torch.Tensor:
        """Outputs (groups, rows, outputs) after trunk shifts (groups, directions) and
        output corrections (groups, width + 1, outputs)."""
        return (self.out + torch.einsum("nod,gd->gno", self.jac, shift)
                + torch.einsum("nw,gwo->gno", self.features, heads))


def fit_groups(train: _Linearised, y_train: torch.Tensor, val: _Linearised,
               y_val: torch.Tensor, losses: TaskLosses, member: torch.Tensor,
               steps: int) -> torch.Tensor:
    """Fine-tune each group (bool rows of ``member``, (groups, tasks)) from the checkpoint
    on its tasks' training losses; each (group, task)'s least validation loss over
    checkpoints, shape (groups, tasks)."""
    n_groups = len(member)
    shift = torch.zeros(n_groups, train.jac.shape[-1], device=member.device, requires_grad=True)
    heads = torch.zeros(n_groups, *train.features.shape[1:2], train.out.shape[1],
                        device=member.device, requires_grad=True)
    opt = torch.optim.Adam([shift, heads], lr=STEP_LR)
    weight = member.to(train.out.dtype)
    best = torch.full(member.shape, torch.inf, device=member.device)
    with torch.no_grad():
        best = torch.fmin(best, losses(val.shifted(shift, heads), y_val))
    for step in range(1, steps + 1):
        opt.zero_grad(set_to_none=True)
        (losses(train.shifted(shift, heads), y_train) * weight).sum().backward()
        opt.step()
        if step % CHECK_EVERY == 0 or step == steps:
            with torch.no_grad():
                best = torch.fmin(best, losses(val.shifted(shift, heads), y_val))
    return best


def linearized_losses(run: ProbeRun, groups: list[tuple[int, ...]]) -> np.ndarray:
    """Each group's estimated validation loss per task (NaN for a task not in the group),
    shape (groups, tasks), fine-tuned linearly from the checkpoint of the all-in-one network
    among the run's subset probes."""
    data, probe, n = run.data, run.subset_probe, run.data.n_tasks
    everyone = probe.index(range(n))  # the all-in-one network, at its checkpoint
    model = copy.deepcopy(probe.initial)
    model.load_state_dict({k: v[everyone] for k, v in probe.params.items()})
    rows = sample_rows(data.labelled(data.y_train), FIT_ROWS, run.seed)
    val_rows = sample_rows(data.labelled(data.y_val), FIT_ROWS, run.seed + 1)
    train = _Linearised(model, data.x_train[rows], run.seed)
    val = _Linearised(model, data.x_val[val_rows], run.seed, like=train)
    losses = TaskLosses(data.tasks)
    member = torch.zeros(len(groups), n, dtype=torch.bool, device=data.x_train.device)
    for g, group in enumerate(groups):
        member[g, list(group)] = True
    chunk = max(1, GROUP_ELEMENTS // max(1, len(rows) * train.out.shape[1]))
    parts = [fit_groups(train, data.y_train[rows], val, data.y_val[val_rows], losses,
                        member[s:s + chunk], run.taskset.probe.transfer_steps)
             for s in range(0, len(groups), chunk)]
    out = torch.cat(parts).double().cpu().numpy()
    return np.where(member.cpu().numpy(), out, np.nan)


def linearized_gain(run: ProbeRun) -> np.ndarray:
    """G[i][j] = (L_j alone - L_j with i) / L_j alone, from ``linearized_losses``."""
    n = run.data.n_tasks
    pairs = list(itertools.combinations(range(n), 2))
    groups: list[tuple[int, ...]] = [(t,) for t in range(n)]
    loss = linearized_losses(run, [*groups, *pairs])
    alone = np.diag(loss[:n])
    gain = np.zeros((n, n))
    for (i, j), row in zip(pairs, loss[n:], strict=True):
        gain[i, j] = (alone[j] - row[j]) / max(alone[j], 1e-12)
        gain[j, i] = (alone[i] - row[i]) / max(alone[i], 1e-12)
    return gain
