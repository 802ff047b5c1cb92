"""Linear CKA between the trunk representations of the single-task probes (validation rows)."""

from __future__ import annotations

import numpy as np
import torch

from affinity.measures.base import Measure, ProbeRun

MAX_ROWS = 5000  # validation rows used; CKA is stable well below this


def linear_cka(reps: torch.Tensor) -> torch.Tensor:
    """Pairwise linear CKA of representations.

    reps : tensor of shape (n_reps, n_rows, width)
    Returns a symmetric (n_reps, n_reps) tensor with ones on the diagonal (for non-constant
    representations): ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) on column-centred X, Y.
    """
    x = reps.double()
    x = x - x.mean(dim=1, keepdim=True)
    cross = torch.einsum("anh,bnk->abhk", x, x).pow(2).sum(dim=(-2, -1))
    self_norm = cross.diagonal().sqrt()
    return cross / (self_norm[:, None] * self_norm[None, :]).clamp(min=1e-30)


def cka_matrix(run: ProbeRun) -> np.ndarray:
    probe, n = run.subset_probe, run.data.n_tasks
    x = run.data.x_val[:MAX_ROWS]
    feats = probe.features([probe.index([t]) for t in range(n)], x)
    return linear_cka(feats).cpu().numpy()


CKA = Measure(
    name="cka",
    needs=frozenset({"singles"}),
    compute=cka_matrix,
    description="linear CKA of single-task trunks' validation features (symmetric, diagonal 1)",
)
