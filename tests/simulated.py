"""A simulated trainer: the analysis' executor with instant synthetic losses, no training.

Tasks belong to latent clusters: a partner from the task's own cluster lowers its loss, one
from another cluster raises it (a seeded affinity model), and every network's losses carry
seeded noise of their own. Each network "trains" a number of epochs that depends on its
group and, a little, on its seed, so the planner's estimates are wrong as they are with real
networks. Every network trained is recorded, so a test can check that what the result reads
was trained on the seeds it names.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence

import numpy as np
import torch

from affinity.data import Dataset
from affinity.probes.joint import JointProbe
from affinity.probes.subsets import SubsetProbe
from affinity.taskset import TaskSet

Group = tuple[int, ...]


class SimulatedExecutor:
    """An ``Executor`` whose networks are draws from a seeded model of task affinities.

    world : seed of the affinity model (clusters, base losses, effects).
    noise : seed-to-seed spread of a network's loss, relative to the task's base loss.
    """

    def __init__(self, n_tasks: int, world: int = 0, noise: float = 0.03) -> None:
        rng = np.random.default_rng(world)
        self.n_tasks, self.world, self.noise = n_tasks, world, noise
        self.cluster = rng.integers(0, max(1, n_tasks // 3), n_tasks)
        same = self.cluster[:, None] == self.cluster[None, :]
        # effect[i, j]: the relative drop of j's loss when trained beside i
        self.effect = np.where(same, rng.uniform(0.02, 0.12, (n_tasks, n_tasks)),
                               rng.uniform(-0.10, 0.02, (n_tasks, n_tasks)))
        np.fill_diagonal(self.effect, 0.0)
        self.base = rng.uniform(0.2, 1.0, n_tasks)
        self.base_epochs = rng.integers(4, 12, n_tasks)
        self.trained: dict[tuple[Group, int], np.ndarray] = {}
        """Every network trained: its losses (NaN off-group) by (group, seed)."""

    def _rng(self, group: Group, seed: int, what: str) -> np.random.Generator:
        key = zlib.crc32(repr((self.world, group, seed, what)).encode())
        return np.random.default_rng(key)

    def losses(self, group: Group, seed: int) -> np.ndarray:
        """Validation loss of each task of the group's network on ``seed``, NaN off-group."""
        out = np.full(self.n_tasks, np.nan)
        members = list(group)
        drop = self.effect[np.ix_(members, members)].sum(0) / max(1, len(members) - 1) ** 0.5
        noise = self._rng(group, seed, "loss").normal(0.0, self.noise, len(members))
        out[members] = self.base[members] * np.maximum(0.05, 1 - drop + noise)
        return out

    def epochs(self, group: Group, seed: int, limit: int) -> int:
        """Epochs the group's network trains: its tasks' mean, a little more for larger
        groups, give or take one on each seed; at most the recipe's ``limit``."""
        mean = float(self.base_epochs[list(group)].mean()) + 0.5 * math.log(len(group))
        wobble = int(self._rng(group, seed, "epochs").integers(-1, 2))
        return int(min(limit, max(1, round(mean) + wobble)))

    def _train(self, taskset: TaskSet, data: Dataset, group: Group, seed: int
               ) -> tuple[np.ndarray, int, int]:
        labelled = data.labelled(data.y_train)[:, list(group)].any(1).sum().item()
        per_epoch = max(1, math.ceil(labelled / taskset.training.batch_size))
        epochs = self.epochs(group, seed, taskset.training.epochs)
        loss = self.losses(group, seed)
        self.trained[group, seed] = loss
        return loss, epochs, epochs * per_epoch

    def joint(self, taskset: TaskSet, data: Dataset, seed: int, device: torch.device,
              tick: Callable[..., None] | None = None) -> JointProbe:
        everyone = tuple(range(self.n_tasks))
        loss, epochs, steps = self._train(taskset, data, everyone, seed)
        noisy = self.effect + self._rng(everyone, seed, "affinity").normal(
            0, 0.02, self.effect.shape)
        cosine = np.clip(5 * noisy, -1, 1)
        np.fill_diagonal(cosine, 1.0)
        if tick:
            tick(steps)
        return JointProbe(cosine, (cosine < 0).astype(float), noisy, 10, loss, epochs, 0.01,
                          steps)

    def subsets(self, taskset: TaskSet, data: Dataset, members: Sequence[Group], seed: int,
                device: torch.device, tick: Callable[..., None] | None = None,
                deadline: float | None = None) -> SubsetProbe:
        members = [tuple(sorted(m)) for m in members]
        trained = [self._train(taskset, data, g, seed) for g in members]
        if tick:
            tick(sum(t[2] for t in trained))
        return SubsetProbe(members, np.array([t[0] for t in trained]), {},
                           torch.nn.Identity(),  # type: ignore[arg-type]  # never called
                           np.array([t[1] for t in trained]), np.array([t[2] for t in trained]),
                           max(t[2] for t in trained), sum(t[2] for t in trained))
