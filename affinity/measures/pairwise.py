"""Pairwise gain: (L_j alone - L_j trained with i) / L_j alone, on validation rows."""

import numpy as np

from affinity.measures.base import Measure, ProbeRun


def pairwise_gain(run: ProbeRun) -> np.ndarray:
    probe, n = run.subsets, run.data.n_tasks
    gain = np.zeros((n, n))
    for j in range(n):
        alone = probe.val_loss[probe.index([j]), j]
        for i in range(n):
            if i != j:
                with_i = probe.val_loss[probe.index([i, j]), j]
                gain[i, j] = (alone - with_i) / max(alone, 1e-12)
    return gain


PAIRWISE = Measure(
    name="pairwise",
    needs=frozenset({"singles", "pairs"}),
    compute=pairwise_gain,
    description="relative drop of j's best validation loss when trained with i; diagonal 0",
)
