"""Ground truth: per-seed validation losses of every subset of a set's tasks
(``bench/truths/make.py`` writes them), and the scores the benchmarks compute on it: a
grouping's total loss and regret, the optimum for k groups, random partitions, pair gains,
auxiliary regret, and halvings of the seeds for the noise floor."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affinity.grouping.select import choose_groups

TRUTH_DIR = Path(__file__).resolve().parent / "data"
RANDOM_PARTITIONS = 4000


@dataclass
class Truth:
    """Per-seed validation losses of every subset: loss[s, subset, task], NaN off-subset."""

    tasks: list[str]
    subsets: list[tuple[int, ...]]
    loss: np.ndarray

    def __post_init__(self) -> None:
        self.mean = self.loss.mean(axis=0)
        self.index = {s: i for i, s in enumerate(self.subsets)}
        self.optima: dict[int, tuple[list[tuple[int, ...]], float]] = {}

    @classmethod
    def read(cls, name: str) -> Truth:
        doc = np.load(TRUTH_DIR / f"{name}.npz")
        tasks = [str(t) for t in doc["tasks"]]
        subsets = [tuple(t for t in range(len(tasks)) if m >> t & 1) for m in doc["subsets"]]
        return cls(tasks, subsets, doc["loss"].astype(float))

    def half(self, which: int) -> Truth:
        return Truth(self.tasks, self.subsets, self.loss[which::2])

    def halvings(self, n_splits: int, rng: np.random.Generator) -> list[tuple[Truth, Truth]]:
        """``n_splits`` random halvings of the seeds, each both ways: (chosen on, scored on)."""
        out = []
        for _ in range(n_splits):
            order = rng.permutation(len(self.loss))
            a, b = (Truth(self.tasks, self.subsets, self.loss[np.sort(part)])
                    for part in np.array_split(order, 2))
            out += [(a, b), (b, a)]
        return out

    def row(self, group: tuple[int, ...]) -> np.ndarray:
        return self.mean[self.index[tuple(sorted(group))]]

    def total(self, groups: list[tuple[int, ...]]) -> float:
        """Each task at its best group."""
        rows = np.stack([self.row(g) for g in groups])
        return float(np.nanmin(rows, axis=0).sum())

    def seed_totals(self, groups: list[tuple[int, ...]]) -> np.ndarray:
        """Per seed, the total loss of ``groups``, each task served by its best group on the
        mean over the seeds."""
        idx = [self.index[tuple(sorted(g))] for g in groups]
        serving = np.nanargmin(np.stack([self.mean[i] for i in idx]), axis=0)
        return np.stack([self.loss[:, idx[b], t] for t, b in enumerate(serving)], axis=1) \
            .sum(axis=1)

    def optimum(self, k: int) -> tuple[list[tuple[int, ...]], float]:
        """The least total loss of k groups (each task at its best group): an integer
        program over every subset, solved once per k."""
        if k not in self.optima:
            sel = choose_groups(self.subsets, -self.mean, k)
            self.optima[k] = (sel.groups, -sel.total_gain)
        return self.optima[k]

    def random_mean(self, k: int, rng: np.random.Generator) -> float:
        n, totals = len(self.tasks), []
        while len(totals) < RANDOM_PARTITIONS:
            labels = rng.integers(0, k, n)
            if len(set(labels.tolist())) == k:
                totals.append(self.total([tuple(np.flatnonzero(labels == b).tolist())
                                          for b in range(k)]))
        return float(np.mean(totals))

    def regret(self, groups: list[tuple[int, ...]], k: int, rand: float) -> float:
        best = self.optimum(k)[1]
        return (self.total(groups) - best) / max(rand - best, 1e-12)

    def pair_gains(self) -> np.ndarray:
        n = len(self.tasks)
        single = np.array([self.row((j,))[j] for j in range(n)])
        gain = np.zeros((n, n))
        for i, j in itertools.permutations(range(n), 2):
            gain[i, j] = (single[j] - self.row((i, j))[j]) / single[j]
        return gain

    def aux_regret(self, primary: int, chosen: tuple[int, ...], max_aux: int) -> float:
        """(p's loss with ``chosen`` - p's best subset) / (random auxiliaries - best)."""
        n = len(self.tasks)
        with_p = [s for s in self.subsets if primary in s]
        best = min(self.row(s)[primary] for s in with_p)
        rand = np.mean([np.mean([self.row(s)[primary] for s in with_p if len(s) == m + 1])
                        for m in range(1, min(max_aux, n - 1) + 1)])
        mine = self.row(tuple(sorted((primary, *chosen))))[primary]
        return float((mine - best) / max(rand - best, 1e-12))

    def best_aux(self, primary: int, max_aux: int) -> tuple[int, ...]:
        with_p = [s for s in self.subsets if primary in s and len(s) <= max_aux + 1]
        best = min(with_p, key=lambda s: self.row(s)[primary])
        return tuple(t for t in best if t != primary)
