"""The compute budget, counted in work: what one training run is, what was spent, what a
stage will cost.

The unit is one full training of the all-in-one network of the first seed, counted in its
steps. Every network's step trains one minibatch through the same trunk, so a network costs
its steps over the unit's, and a stage the sum over its networks. Before a network trains,
its steps are estimated from counted work alone: its epochs times its steps per epoch
(``ceil(own rows / batch size)``: a network passes over the rows labelled for its tasks),
with its epochs those it trained on an earlier seed, else the mean of its tasks' single-task
networks', else the all-in-one network's. No timing enters a plan, so the same task set,
data, budget and seeds give the same plan on any machine and under any load. Wall time serves
the ETA and ``budget.max_seconds`` only.

Networks are never cut short for the budget: a stage that does not fit is not started (the
planner trims the evidence instead), and one that trains longer than estimated is paid in
full (``meta.cost`` says so).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Group = tuple[int, ...]


@dataclass
class Ledger:
    """The budget (in training runs) and what was spent of it.

    ``rows(groups)``: the number of training rows each group's network trains on.
    """

    budget: float
    batch_size: int
    rows: Callable[[Sequence[Group]], list[int]]
    everyone: Group
    max_seconds: float | None = None
    unit_steps: int = 0
    unit_epochs: int = 0
    unit_seconds: float = 0.0
    """The all-in-one network's wall time (its affinity sampling left out): reported, never
    planned with."""
    network_steps: int = 0
    live_steps: int = 0
    """Network-steps of the stage under way (the progress bar's count)."""
    epochs: dict[Group, int] = field(default_factory=dict)
    """The epochs each group's network trained, on the latest seed it trained."""
    stages: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def set_unit(self, steps: int, epochs: int, seconds: float = 0.0) -> None:
        """The all-in-one network of the first seed trained ``steps`` steps over ``epochs``
        (in ``seconds``, affinity sampling left out: reported, never planned with)."""
        self.unit_steps, self.unit_epochs = max(steps, 1), max(epochs, 1)
        self.unit_seconds = seconds
        self.epochs[self.everyone] = epochs

    @property
    def spent(self) -> float:
        """Training runs spent so far (0 until the unit is known)."""
        return self.network_steps / self.unit_steps if self.unit_steps else 0.0

    def live(self) -> float:
        """Training runs spent, the stage under way included."""
        return (self.network_steps + self.live_steps) / self.unit_steps if self.unit_steps \
            else 0.0

    @property
    def remaining(self) -> float:
        return self.budget - self.spent

    def tick(self, networks: int = 1) -> None:
        """One step of ``networks`` networks of the stage under way."""
        self.live_steps += networks

    def steps_per_epoch(self, groups: Sequence[Group]) -> list[int]:
        return [max(1, math.ceil(r / self.batch_size)) for r in self.rows(groups)]

    def expected_epochs(self, group: Group) -> float:
        """Epochs the network of ``group`` is expected to train (see the module docstring)."""
        if group in self.epochs:
            return float(self.epochs[group])
        known = [self.epochs[(t,)] for t in group if (t,) in self.epochs]
        return float(np.mean(known)) if known else float(self.unit_epochs)

    def estimate(self, groups: Sequence[Group]) -> float:
        """Training runs the networks of ``groups`` are expected to cost. Before the unit
        trained, each network is planned at as many epochs as the all-in-one network: its
        steps per epoch over the all-in-one network's."""
        if not groups:
            return 0.0
        groups = list(groups)
        per_epoch = self.steps_per_epoch(groups)
        if not self.unit_steps:
            return float(sum(per_epoch)) / self.steps_per_epoch([self.everyone])[0]
        epochs = [self.expected_epochs(g) for g in groups]
        return float(np.dot(epochs, per_epoch)) / self.unit_steps

    def affords(self, groups: Sequence[Group], then: Sequence[Group] = ()) -> bool:
        """Whether the networks of ``groups`` fit in what is left, leaving enough for the
        networks of ``then`` after them."""
        return self.estimate(groups) + self.estimate(then) <= self.remaining + 1e-9

    def out_of_time(self) -> bool:
        """Whether ``budget.max_seconds`` has passed."""
        return self.max_seconds is not None and \
            time.perf_counter() - self.started > self.max_seconds

    def deadline(self) -> float | None:
        """``budget.max_seconds`` as a ``time.time()`` for the trainer, None without it."""
        if self.max_seconds is None:
            return None
        return time.time() + self.max_seconds - (time.perf_counter() - self.started)

    def add(self, name: str, seed: int, groups: Sequence[Group], epochs: Sequence[int],
            member_steps: Sequence[int], seconds: float, cut: int = 0) -> None:
        """A stage that trained one network per group, each ``epochs`` and ``member_steps``
        long (``cut``: networks stopped by ``budget.max_seconds``)."""
        planned = self.estimate(groups) if self.unit_steps else None
        steps = int(np.sum(member_steps))
        self.network_steps += steps
        self.live_steps = 0
        for g, e in zip(groups, epochs, strict=True):
            self.epochs[tuple(g)] = int(e)
        record: dict[str, Any] = {"stage": name, "networks": len(groups), "seed": seed,
                                  "network_steps": steps, "seconds": round(seconds, 3)}
        if self.unit_steps:
            record["training_runs"] = round(steps / self.unit_steps, 3)
        if planned is not None:
            record["planned_training_runs"] = round(planned, 3)
        if cut:
            record["cut"] = cut
        self.stages.append(record)

    def cost(self) -> dict[str, Any]:
        """``meta.cost``: the training runs spent (network-steps over the unit's steps), the
        budget, the unit, each stage (its cost as planned and as trained) and, for
        information, the wall time in units of the all-in-one network's."""
        seconds = time.perf_counter() - self.started
        return {"training_runs": round(self.spent, 3), "budget": round(self.budget, 3),
                "unit_steps": self.unit_steps, "network_steps": self.network_steps,
                "seconds": round(seconds, 3), "unit_seconds": round(self.unit_seconds, 4),
                "wall_run_equivalents": round(seconds / self.unit_seconds, 3)
                if self.unit_seconds else None,
                "stages": list(self.stages)}
