"""The training recipe every probe network follows (the task set's ``training``).

Optimizer by name, the seeded minibatches of each network (over its own rows), per-network
early stopping on the network's own mean validation loss, and the compaction of a stack of
networks when some of them stop (their parameters and optimizer state are dropped, the rest
train on).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from affinity.taskset import TrainingSpec


def make_optimizer(params: Iterable[torch.Tensor], spec: TrainingSpec) -> torch.optim.Optimizer:
    """The recipe's optimizer; every one of them is elementwise, so stacked networks train
    exactly as they would alone."""
    # foreach: one kernel a step for all tensors, on the CPU too (its default there is a loop)
    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum,
                               weight_decay=spec.weight_decay, foreach=True)
    cls = torch.optim.AdamW if spec.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=spec.lr, weight_decay=spec.weight_decay, foreach=True)


@dataclass
class Batch:
    """One lockstep step of the active networks: ``rows`` (batch,) when they share their rows,
    else (networks, batch) with ``valid`` marking real rows (the rest is padding); ``ends``
    marks the networks that finish an epoch with this step."""

    rows: torch.Tensor
    valid: torch.Tensor | None
    ends: torch.Tensor

    def select(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and labels of the step; padding rows carry no label."""
        if self.valid is None:
            return x[self.rows], y[self.rows]
        y = y[self.rows].masked_fill(~self.valid[..., None], torch.nan)
        return x[self.rows], y


class Minibatches:
    """Seeded minibatches of networks that train in lockstep.

    A network trains on its own rows (``rows[m]``: those labelled for at least one of its
    tasks); each of its epochs is one pass over them in the order of that epoch's shuffle of
    all rows. Networks with the same rows see the same minibatches (common random numbers),
    and a network with a few rows of its own finishes an epoch in fewer steps, as it would
    if trained alone on them.
    """

    def __init__(self, rows: torch.Tensor, batch_size: int, seed: int) -> None:
        # the bookkeeping stays on the CPU (no device sync a step); the batches go to the device
        self.device, self.own, self.batch_size = rows.device, rows.cpu(), batch_size
        rows = self.own
        self.shared = bool((rows == rows[:1]).all())
        self.gen = torch.Generator().manual_seed(seed)
        self.shuffles: dict[int, torch.Tensor] = {}  # drawn in epoch order
        own = rows[:1] if self.shared else rows
        self.length = own.sum(1)
        self.epoch = [0] * len(own)
        self.start = torch.zeros(len(own), dtype=torch.long, device=rows.device)
        self.order = torch.zeros(len(own), int(self.length.max()), dtype=torch.long,
                                 device=rows.device)  # each network's epoch order, padded
        for m in range(len(own)):
            self._new_epoch(m)

    def _new_epoch(self, m: int) -> None:
        epoch = self.epoch[m]
        if epoch not in self.shuffles:
            self.shuffles[epoch] = torch.randperm(self.own.shape[1], generator=self.gen)
        shuffle = self.shuffles[epoch]
        order = shuffle[self.own[m][shuffle]]
        self.order[m, :len(order)] = order
        self.start[m] = 0

    def next(self, active: torch.Tensor) -> Batch:
        """The next step of the networks ``active`` (their indices in ``rows``)."""
        ids = torch.zeros(1, dtype=torch.long) if self.shared else active.cpu()
        pos = self.start[ids, None] + torch.arange(self.batch_size)
        valid = pos < self.length[ids, None]
        rows = self.order[ids[:, None], pos.clamp(max=self.order.shape[1] - 1)]
        ends = self.start[ids] + self.batch_size >= self.length[ids]
        self.start[ids] += self.batch_size
        for m in ids[ends].tolist():
            self.epoch[m] += 1
            self._new_epoch(m)
        oldest = min(self.epoch[m] for m in ids.tolist())
        for e in [e for e in self.shuffles if e < oldest]:
            del self.shuffles[e]  # no active network will run that epoch again
        if self.shared:
            return Batch(rows[0, valid[0]].to(self.device), None,
                         ends.expand(len(active)).to(self.device))
        return Batch(torch.where(valid, rows, 0).to(self.device), valid.to(self.device),
                     ends.to(self.device))


def own_rows(labelled: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
    """(networks, rows): the rows labelled for at least one task of each network, given the
    (networks, tasks) 0/1 membership ``members`` and the (rows, tasks) label mask
    ``labelled`` (``Dataset.labelled``)."""
    return (members @ labelled.T.to(members.dtype)) > 0


class EarlyStopping:
    """Early stopping of n networks at once on a score per network (lower is better).

    ``update(score)`` returns (improved, stopped): an epoch improves when the score falls
    below the best so far by more than ``min_delta`` times the network's first score (so the
    threshold follows each network's loss scale); a network stops after ``patience`` epochs
    without improving; its checkpoint is the epoch of its last improvement.
    """

    def __init__(self, n: int, patience: int, device: torch.device | str = "cpu",
                 min_delta: float = 0.0) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.best = torch.full((n,), torch.inf, device=device)
        self.first = torch.full((n,), torch.nan, device=device)
        self.wait = torch.zeros(n, dtype=torch.long, device=device)

    def update(self, score: torch.Tensor, which: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """One epoch's scores of the networks ``which`` marks (default: all); the others
        keep their state and neither improve nor stop."""
        which = torch.ones_like(self.wait, dtype=torch.bool) if which is None else which
        self.first = torch.where(which & self.first.isnan(), score, self.first)
        improved = which & (score < self.best - self.min_delta * self.first.abs())
        self.best = torch.where(improved, score, self.best)
        self.wait = torch.where(improved, 0, self.wait + which.long())
        return improved, which & (self.wait >= self.patience)

    def keep(self, keep: torch.Tensor) -> None:
        self.best, self.first, self.wait = self.best[keep], self.first[keep], self.wait[keep]


def compact(params: dict[str, torch.Tensor], opt: torch.optim.Optimizer,
            keep: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.optim.Optimizer]:
    """Keep the stacked networks where ``keep`` is True: new leaf tensors and an optimizer of
    the same kind whose state (moments, momentum buffers) is sliced alike."""
    index = keep.nonzero().squeeze(1)
    n = len(keep)
    new = {k: v.detach()[index].clone().requires_grad_() for k, v in params.items()}
    new_opt = type(opt)(new.values(), lr=opt.defaults["lr"])  # type: ignore[call-arg]
    new_opt.param_groups[0].update({k: v for k, v in opt.param_groups[0].items() if k != "params"})
    for old, fresh in zip(params.values(), new.values(), strict=True):
        state = opt.state.get(old)
        if state:
            new_opt.state[fresh] = {
                key: value[index].clone() if torch.is_tensor(value) and value.dim() > 0
                and value.shape[0] == n else value for key, value in state.items()}
    return new, new_opt
