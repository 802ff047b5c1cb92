"""The training recipe every probe network follows (the task set's ``training``).

Optimizer by name, the seeded minibatch order of each epoch, per-network early stopping on
the network's own mean validation loss, and the compaction of a stack of networks when some
of them stop (their parameters and optimizer state are dropped, the rest train on).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

from affinity.taskset import TrainingSpec


def make_optimizer(params: Iterable[torch.Tensor], spec: TrainingSpec) -> torch.optim.Optimizer:
    """The recipe's optimizer; every one of them is elementwise, so stacked networks train
    exactly as they would alone."""
    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum,
                               weight_decay=spec.weight_decay)
    cls = torch.optim.AdamW if spec.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=spec.lr, weight_decay=spec.weight_decay)


def epoch_batches(n_rows: int, batch_size: int, epochs: int, seed: int,
                  device: torch.device) -> Iterator[list[torch.Tensor]]:
    """The row indices of each epoch's minibatches: a seeded shuffle, the same for every
    network of a seed (common random numbers)."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(n_rows, generator=gen).to(device)
        yield [order[start:start + batch_size] for start in range(0, n_rows, batch_size)]


class EarlyStopping:
    """Early stopping of n networks at once on a score per network (lower is better).

    ``update(score)`` returns (improved, stopped): a network stops after ``patience`` epochs
    without a strictly lower score; its checkpoint is the epoch of its best score.
    """

    def __init__(self, n: int, patience: int, device: torch.device | str = "cpu") -> None:
        self.patience = patience
        self.best = torch.full((n,), torch.inf, device=device)
        self.wait = torch.zeros(n, dtype=torch.long, device=device)

    def update(self, score: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        improved = score < self.best
        self.best = torch.where(improved, score, self.best)
        self.wait = torch.where(improved, 0, self.wait + 1)
        return improved, self.wait >= self.patience

    def keep(self, keep: torch.Tensor) -> None:
        self.best, self.wait = self.best[keep], self.wait[keep]


def compact(params: dict[str, torch.Tensor], opt: torch.optim.Optimizer,
            keep: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.optim.Optimizer]:
    """Keep the stacked networks where ``keep`` is True: new leaf tensors and an optimizer of
    the same kind whose state (moments, momentum buffers) is sliced alike."""
    index = keep.nonzero().squeeze(1)
    n = len(keep)
    new = {k: v.detach()[index].clone().requires_grad_() for k, v in params.items()}
    new_opt = type(opt)(new.values(), lr=opt.defaults["lr"])
    new_opt.param_groups[0].update({k: v for k, v in opt.param_groups[0].items() if k != "params"})
    for old, fresh in zip(params.values(), new.values(), strict=True):
        state = opt.state.get(old)
        if state:
            new_opt.state[fresh] = {
                key: value[index].clone() if torch.is_tensor(value) and value.dim() > 0
                and value.shape[0] == n else value for key, value in state.items()}
    return new, new_opt
