"""Linearised subset affinity, an experiment: how a step on a subset of the tasks, taken from
the all-in-one network's checkpoint, changes each task's validation loss; no other network
trained (``bench/studies/one_run.py`` scores it against the truth).

In the spirit of GRAD-TAG (Li et al., KDD 2024). Around the checkpoint theta, the network's
outputs are linear in a small trunk shift: f(x; theta + P w) ~ f(x; theta) + J(x) P w, with
J(x) the outputs' (not the loss's) Jacobian on the trunk's parameters and P one fixed random
projection onto ``DIRECTIONS`` directions. For each subset S, w_S minimises the subset's
tasks' training losses of that linear model, each divided by its loss at the checkpoint,
plus a ridge penalty; the step is then rescaled to one norm for every subset (``RADIUS`` of
the trunk's norm), so subsets differ in direction, not in how far they move. The real network
with its trunk at theta + P w_S is scored on validation rows (the heads as they are). Each
task's loss is z-scored over the subsets that hold it; A[i][j] is minus task j's mean z over
the subsets that hold both i and j: positive where training beside i helps j.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import torch
from torch.func import functional_call, jacrev, vmap

from affinity.data import Dataset
from affinity.models import MultiTaskNet, stacked_call
from affinity.task_types import TaskLosses

DIRECTIONS = 64
"""Random directions the trunk's Jacobians are projected onto."""
FIT_ROWS = 1024
"""Training rows (a seeded sample) the steps are fit on; as many validation rows score them."""
PENALTY = 1e-3
RADIUS = 0.05
"""Every subset's trunk step, as a share of the trunk parameters' norm."""
FIT_STEPS = 200
SUBSETS = 512
"""Random subsets sampled beyond ``log2(SUBSETS)`` tasks; every subset below."""
JACOBIAN_ELEMENTS = 2**24  # per-row Jacobian entries held at once (rows x outputs x params)
GROUP_ELEMENTS = 2**24  # output entries of the subsets scored at once (subsets x rows x outputs)


def sample_rows(labelled: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """At most ``n`` rows labelled for some task, drawn by ``seed`` (sorted)."""
    rows = labelled.any(1).nonzero().squeeze(1).cpu()
    if len(rows) > n:
        gen = torch.Generator().manual_seed(seed)
        rows = rows[torch.randperm(len(rows), generator=gen)[:n]].sort().values
    return rows.to(labelled.device)


def projection(model: MultiTaskNet, seed: int, directions: int) -> dict[str, torch.Tensor]:
    """One Gaussian matrix (numel, directions) per trunk parameter, drawn by ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    scale = directions ** -0.5
    return {k: (torch.randn(v.numel(), directions, generator=gen) * scale).to(v.device, v.dtype)
            for k, v in model.trunk.named_parameters()}


def projected_jacobians(model: MultiTaskNet, x: torch.Tensor,
                        proj: dict[str, torch.Tensor]) -> torch.Tensor:
    """J(x) P for every row of ``x``: the outputs' Jacobian on the trunk's parameters,
    projected by ``proj``; shape (rows, outputs, directions), in eval mode."""
    trunk = {f"trunk.{k}": v.detach() for k, v in model.trunk.named_parameters()}
    rest = {k: v.detach() for k, v in model.named_parameters() if k not in trunk}
    rest |= dict(model.named_buffers())

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
                parts.append(sum(per_param[k].reshape(len(rows), n_out, -1)
                                 @ proj[k.removeprefix("trunk.")] for k in trunk))
    finally:
        model.train(was)
    return torch.cat(parts)


def subsets_for(n_tasks: int, seed: int, count: int = SUBSETS) -> list[tuple[int, ...]]:
    """Every subset of two or more tasks when there are few; else ``count`` random ones,
    each task in a subset with probability one half (``seed``)."""
    if 2 ** n_tasks - n_tasks - 1 <= count:
        return [s for r in range(2, n_tasks + 1) for s in itertools.combinations(range(n_tasks), r)]
    rng = np.random.default_rng(seed)
    out: set[tuple[int, ...]] = set()
    while len(out) < count:
        pick = tuple(np.flatnonzero(rng.random(n_tasks) < 0.5).tolist())
        if len(pick) >= 2:
            out.add(pick)
    return sorted(out)


def fit_steps(jac: torch.Tensor, out: torch.Tensor, y: torch.Tensor, losses: TaskLosses,
              member: torch.Tensor, steps: int = FIT_STEPS,
              penalty: float = PENALTY) -> torch.Tensor:
    """Each subset's step w (subsets, directions) on the linear model out + jac w: the least
    of its tasks' losses, each relative to its loss at w = 0, plus ``penalty`` |w|^2."""
    base = losses(out, y).detach().clamp(min=1e-12)
    weight = member.to(out.dtype) / base
    w = torch.zeros(len(member), jac.shape[-1], dtype=out.dtype, device=out.device,
                    requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.05)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        shifted = out + torch.einsum("nod,gd->gno", jac, w)
        ((losses(shifted, y) * weight).sum() + penalty * w.pow(2).sum()).backward()
        opt.step()
    return w.detach()


def scored(model: MultiTaskNet, proj: dict[str, torch.Tensor], w: torch.Tensor,
           radius: float, x: torch.Tensor, y: torch.Tensor,
           losses: TaskLosses) -> torch.Tensor:
    """The real network's losses (subsets, tasks) on (x, y) with its trunk moved by P w,
    each step rescaled to ``radius`` times the trunk's norm."""
    trunk = dict(model.trunk.named_parameters())
    norm = torch.sqrt(sum(p.detach().pow(2).sum() for p in trunk.values()))
    moves = {k: (w @ proj[k].T).reshape(len(w), *p.shape) for k, p in trunk.items()}
    size = torch.sqrt(sum(m.pow(2).flatten(1).sum(1) for m in moves.values())).clamp(min=1e-12)
    factor = radius * norm / size if radius else torch.ones_like(size)
    params = {k: p.detach()[None] + moves[k] * factor.view(-1, *[1] * p.dim())
              for k, p in trunk.items()}
    params |= {k: b.expand(len(w), *b.shape) for k, b in model.trunk.named_buffers()}
    with torch.no_grad():
        feats = stacked_call(model.trunk, params, x)
        return losses(model.head(feats), y)


def subset_losses(model: MultiTaskNet, data: Dataset, seed: int,
                  subsets: list[tuple[int, ...]], radius: float = RADIUS,
                  penalty: float = PENALTY, directions: int = DIRECTIONS,
                  on: str = "val", fit_rows: int = FIT_ROWS) -> np.ndarray:
    """Each subset's validation losses per task after its linearised step from ``model``
    (the all-in-one checkpoint), shape (subsets, tasks)."""
    model = copy.deepcopy(model).eval()
    losses = TaskLosses(data.tasks)
    rows = sample_rows(data.labelled(data.y_train), fit_rows, seed)
    val_rows = sample_rows(data.labelled(data.y_val), fit_rows, seed + 1)
    x, y = data.x_train[rows], data.y_train[rows]
    proj = projection(model, seed, directions)
    jac = projected_jacobians(model, x, proj)
    scale = jac.pow(2).mean().sqrt().clamp(min=1e-12)
    with torch.no_grad():
        out = model(x).flatten(1)
    member = torch.zeros(len(subsets), data.n_tasks, dtype=torch.bool, device=x.device)
    for g, s in enumerate(subsets):
        member[g, list(s)] = True
    chunk = max(1, GROUP_ELEMENTS // max(1, len(rows) * out.shape[1]))
    parts = []
    for s in range(0, len(subsets), chunk):
        w = fit_steps(jac / scale, out, y, losses, member[s:s + chunk], penalty=penalty)
        xs, ys = (data.x_val[val_rows], data.y_val[val_rows]) if on == "val" else (x, y)
        parts.append(scored(model, proj, w, radius, xs, ys, losses))
    return torch.cat(parts).double().cpu().numpy()


def affinity_from_subsets(loss: np.ndarray, subsets: list[tuple[int, ...]]) -> np.ndarray:
    """A[i][j] = minus task j's mean z-scored loss over the subsets holding i and j."""
    n = loss.shape[1]
    member = np.zeros(loss.shape, dtype=bool)
    for g, s in enumerate(subsets):
        member[g, list(s)] = True
    z = np.zeros_like(loss)
    for j in range(n):
        mine = loss[member[:, j], j]
        z[member[:, j], j] = (mine - mine.mean()) / max(mine.std(), 1e-12)
    out = np.zeros((n, n))
    for i, j in itertools.permutations(range(n), 2):
        both = member[:, i] & member[:, j]
        out[i, j] = -z[both, j].mean() if both.any() else 0.0
    return out


def pair_gains_from_alone(model: MultiTaskNet, data: Dataset, seed: int,
                          **options) -> np.ndarray:
    """G[i][j] = task j's relative validation-loss drop when the linearised step is fit on
    i and j, against the step fit on j alone: the truth's pair gain, at first order, the
    per-target effect kept (``affinity_from_subsets`` z-scores it away)."""
    n = data.n_tasks
    subsets = [(t,) for t in range(n)] + list(itertools.combinations(range(n), 2))
    loss = subset_losses(model, data, seed, subsets, **options)
    index = {s: g for g, s in enumerate(subsets)}
    out = np.zeros((n, n))
    for i, j in itertools.permutations(range(n), 2):
        alone = loss[index[(j,)], j]
        out[i, j] = (alone - loss[index[tuple(sorted((i, j)))], j]) / max(alone, 1e-12)
    return out


def linearized_affinity(model: MultiTaskNet, data: Dataset, seed: int, draws: int = 1,
                        **options) -> np.ndarray:
    """The T x T linearised subset affinity from the all-in-one checkpoint ``model``, the
    mean over ``draws`` projections."""
    subsets = subsets_for(data.n_tasks, seed)
    return np.mean([affinity_from_subsets(subset_losses(model, data, seed + 7919 * d, subsets,
                                                        **options), subsets)
                    for d in range(draws)], axis=0)
