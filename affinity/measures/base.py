"""What a measure is: a named function from one seed's probes to a (T, T) matrix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from affinity.data import Dataset
from affinity.probes.joint import JointProbe
from affinity.probes.subsets import SubsetProbe
from affinity.taskset import TaskSet


@dataclass(frozen=True)
class ProbeRun:
    """The probes of one seed: the joint run and the subset (single/pair) networks."""

    taskset: TaskSet
    data: Dataset
    seed: int
    joint: JointProbe | None
    subsets: SubsetProbe | None

    @property
    def joint_probe(self) -> JointProbe:
        """The joint run, which a measure that needs ``joint`` reads."""
        if self.joint is None:
            raise ValueError("this measure needs the joint probe; the run has none")
        return self.joint

    @property
    def subset_probe(self) -> SubsetProbe:
        """The subset networks, which a measure that needs singles or pairs reads."""
        if self.subsets is None:
            raise ValueError("this measure needs the subset probes; the run has none")
        return self.subsets


@dataclass(frozen=True)
class Measure:
    """An affinity measure. ``needs`` names the probes it reads: joint, singles, pairs."""

    name: str
    needs: frozenset[str]
    compute: Callable[[ProbeRun], np.ndarray]
    description: str
