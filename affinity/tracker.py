"""Task affinities inside your own training loop, in the spirit of TAG's in-training lookahead.

Replace ``losses.sum().backward()`` with ``tracker.backward(losses, shared)``: every ``every``-th
call also takes each task's gradient on the shared parameters (one batched backward) and adds
the step's gradient cosines and first-order lookahead affinities to running sums; the
parameters' ``.grad`` are what a plain backward gives. ``tracker.result()`` holds the mean
matrices and their spread over the sampled steps, in the order of ``tasks`` (row = source i,
column = target j), ready for ``affinity.group`` or ``affinity group`` (``write``).

    tracker = AffinityTracker(["depth", "normals", "edges"], every=20, lr=0.1)
    for x, y in loader:
        opt.zero_grad()
        tracker.backward(per_task_losses(model(x), y), model.encoder.parameters())
        opt.step()
    tracker.result()["lookahead"].matrix

The lookahead is first order: 1 - L_j(theta - lr g_i) / L_j(theta) with L_j(theta - lr g_i)
~ L_j(theta) - lr g_i . g_j, which needs no second forward pass (the analysis' joint probe
takes it exactly by default; ``probe.lookahead: first_order`` makes the two the same).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from affinity.probes.joint import gradient_products
from affinity.result import MeasureResult, matrix_frame


class AffinityTracker:
    def __init__(self, tasks: list[str], every: int = 20, lr: float = 0.1) -> None:
        if len(set(tasks)) != len(tasks) or len(tasks) < 2:
            raise ValueError(f"tasks must be two or more distinct names; got {tasks}")
        if every < 1 or lr <= 0:
            raise ValueError(f"every must be >= 1 and lr > 0; got every={every}, lr={lr}")
        self.tasks, self.every, self.lr = list(tasks), every, lr
        self.calls = 0
        n = len(tasks)
        self._sum = np.zeros((3, n, n))  # cosine, conflict, lookahead
        self._squares = np.zeros((3, n, n))
        self._count = np.zeros((n, n))

    @property
    def samples(self) -> int:
        """Steps sampled so far."""
        return int(self._count.max()) if self._count.size else 0

    def backward(self, losses: torch.Tensor, shared: Iterable[torch.Tensor]) -> None:
        """``losses.sum().backward()``, sampling affinities on the ``shared`` parameters every
        ``every``-th call. ``losses``: one scalar loss per task, shape (T,), in ``tasks``'
        order (a task without a label in the batch may give 0)."""
        if losses.shape != (len(self.tasks),):
            raise ValueError(f"losses must have shape ({len(self.tasks)},), one per task; "
                             f"got {tuple(losses.shape)}")
        if self.calls % self.every == 0:
            self._sample(losses, [p for p in shared if p.requires_grad])
        self.calls += 1
        losses.sum().backward()

    def _sample(self, losses: torch.Tensor, shared: list[torch.Tensor]) -> None:
        if not shared:
            raise ValueError("shared must hold the parameters that every task's loss uses")
        eye = torch.eye(len(self.tasks), device=losses.device, dtype=losses.dtype)
        found = torch.autograd.grad(losses, shared, grad_outputs=eye, is_grads_batched=True,
                                    retain_graph=True, allow_unused=True)
        grads = [g if g is not None else torch.zeros(len(self.tasks), *p.shape,
                                                     device=p.device, dtype=p.dtype)
                 for g, p in zip(found, shared, strict=True)]
        cosine, dots, valid = gradient_products(grads)
        base = losses.detach().clamp(min=1e-30)[None, :]
        lookahead = self.lr * dots / base
        sample = torch.stack([cosine, (cosine < 0).to(cosine.dtype), lookahead]) \
            .double().cpu().numpy()
        mask = valid.cpu().numpy()
        self._sum += sample * mask
        self._squares += sample ** 2 * mask
        self._count += mask

    def result(self) -> dict[str, MeasureResult]:
        """``grad_cosine``, ``lookahead`` and ``conflict_rate``: mean over the sampled steps
        (``matrix``) and the standard deviation of a step's value (``std``)."""
        if not self.samples:
            raise ValueError("no step sampled yet: call backward() first")
        count = np.maximum(self._count, 1)
        mean = self._sum / count
        var = np.maximum(self._squares / count - mean ** 2, 0) * count / np.maximum(count - 1, 1)
        return {name: MeasureResult(mean[i], np.sqrt(var[i]))
                for i, name in ((0, "grad_cosine"), (2, "lookahead"), (1, "conflict_rate"))}

    def frame(self, measure: str = "lookahead") -> pd.DataFrame:
        """One mean matrix as a DataFrame (index = source task, columns = target task)."""
        return matrix_frame(self.result()[measure].matrix, self.tasks)

    def write(self, path: str | Path, measure: str = "lookahead") -> Path:
        """The mean matrix as an evidence CSV for ``affinity group PATH --k ...``."""
        path = Path(path)
        self.frame(measure).to_csv(path)
        return path
