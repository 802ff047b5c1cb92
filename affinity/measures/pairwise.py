"""Pairwise gain: (L_j alone - L_j trained with i) / L_j alone, on validation rows.

When the budget could not train every pair (``analysis.evidence``), an untrained pair's
gain onto j is the mean of j's trained pairs (0 when j has none); ``meta.untrained_pairs``
lists them.
"""

import numpy as np

from affinity.measures.base import Measure, ProbeRun


def pairwise_gain(run: ProbeRun) -> np.ndarray:
    probe, n = run.subset_probe, run.data.n_tasks
    gain = np.full((n, n), np.nan)
    trained = set(probe.members)
    for j in range(n):
        alone = probe.val_loss[probe.index([j]), j]
        for i in range(n):
            if i != j and tuple(sorted((i, j))) in trained:
                with_i = probe.val_loss[probe.index([i, j]), j]
                gain[i, j] = (alone - with_i) / max(alone, 1e-12)
    off = ~np.eye(n, dtype=bool) & ~np.isnan(gain)
    means = np.where(off, gain, 0.0).sum(0) / np.maximum(off.sum(0), 1)
    np.fill_diagonal(gain, 0.0)
    return np.where(np.isnan(gain), means[None, :], gain)


PAIRWISE = Measure(
    name="pairwise",
    needs=frozenset({"singles", "pairs"}),
    compute=pairwise_gain,
    description="relative drop of j's best validation loss when trained with i; diagonal 0",
)
