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

from affinity.race import Group
from affinity.taskset import InvalidTaskSet, TaskSet


@dataclass(frozen=True)
class Policy:
    """What the budget buys: the constants of the analysis' spending, passed to ``analyze``
    (the benchmark tunes them with ``--policy NAME=VALUE``)."""

    default_flops: float = 6e12
    """The default budget in counted operations (``budget.training_runs`` unset): sized so
    that the default analysis of a bench-sized table (2,000-6,000 rows, an MLP) takes a few
    minutes on a 2-core CPU (the grouping benchmark prints each set's wall time). Where it
    is short of the least measured analysis, the one-run level (``one_run_level``)."""
    evidence_share: float = 0.6
    """Of what the budget leaves beside the confirmation seeds after the single-task
    networks, the most the pairs and sampled groups may take; the race's selection rounds get
    the rest."""
    confirmation_margin: float = 1.25
    """The fresh seed is kept at this many times its planned cost: a network trains more
    epochs on one seed than on another (up to a fifth more, seen on the benchmark's sets)."""
    race_leaders: int = 1
    """Candidates each contest of the race keeps (its leaders) once halving reaches them:
    with more than one, the leaders race on over new seeds while the budget lasts, so that
    what remains of it goes to the comparison that decides."""

    def __post_init__(self) -> None:
        for name in ("default_flops", "evidence_share", "confirmation_margin"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Policy.{name} must be > 0; got {getattr(self, name)!r}")
        if self.race_leaders < 1:
            raise ValueError(f"Policy.race_leaders must be >= 1; got {self.race_leaders!r}")
        if self.evidence_share > 1:
            raise ValueError(f"Policy.evidence_share must be <= 1; got {self.evidence_share!r}")


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
    step_flops: float = 0.0
    """Counted operations of one network-step (``flops.step_flops``): the unit of counted
    compute, reported beside the runs, never timed."""
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

    def planned_steps(self, groups: Sequence[Group]) -> list[int]:
        """Each network's planned steps: its expected epochs times its steps per epoch (0
        before the unit is known)."""
        groups = list(groups)
        return [round(self.expected_epochs(g) * s)
                for g, s in zip(groups, self.steps_per_epoch(groups), strict=True)]

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
        budget, both also in counted operations (``flops``, ``budget_flops``: network-steps
        times ``step_flops``), the unit, each stage (its cost as planned and as trained) and, for
        information, the wall time in units of the all-in-one network's."""
        seconds = time.perf_counter() - self.started
        return {"training_runs": round(self.spent, 3), "budget": round(self.budget, 3),
                "flops": float(f"{self.network_steps * self.step_flops:.4g}"),
                "budget_flops": float(f"{self.budget * self.unit_steps * self.step_flops:.4g}"),
                "step_flops": float(f"{self.step_flops:.4g}"),
                "unit_steps": self.unit_steps, "network_steps": self.network_steps,
                "seconds": round(seconds, 3), "unit_seconds": round(self.unit_seconds, 4),
                "wall_run_equivalents": round(seconds / self.unit_seconds, 3)
                if self.unit_seconds else None,
                "stages": list(self.stages)}


def finalist_allowance(taskset: TaskSet) -> int:
    """Networks of the all-in-one network's size a confirmation seed is planned to need beyond
    the better baseline, before the finalists are known: the largest k's groups less one
    (each k's finalists mostly share groups with one another and with the baselines)."""
    return max(1, max(taskset.budgets) - 1)


def confirmation_estimate(ledger: Ledger, baseline: Sequence[Group], allowance: int) -> float:
    """Training runs one confirmation seed is planned to cost: the better baseline's networks
    (``baseline``) and ``allowance`` networks of the all-in-one network's size."""
    return ledger.estimate(baseline) + allowance * ledger.estimate([ledger.everyone])


def least_budget(ledger: Ledger, n_tasks: int, allowance: int) -> float:
    """The least budget that affords two seeds of the baselines and the finalists: the
    probes' seed (its all-in-one and single-task networks) and one confirmation seed of the
    dearer baseline (which baseline is the better one is known only once both trained) and
    the finalists' ``allowance``."""
    singles: list[Group] = [(t,) for t in range(n_tasks)]
    together: list[Group] = [ledger.everyone]
    dearer = max([together, singles], key=ledger.estimate)
    return ledger.spent + ledger.estimate(singles) \
        + (0 if ledger.unit_steps else ledger.estimate([ledger.everyone])) \
        + confirmation_estimate(ledger, dearer, allowance)


def raise_default_budget(taskset: TaskSet, ledger: Ledger, need: float) -> None:
    """A default budget (the task set gives none) short of the ``need`` of two fresh seeds is
    raised to it: a default never refuses, and it affords the seeds it promises."""
    if taskset.budget.training_runs is None and need > ledger.budget:
        ledger.budget = float(math.ceil(need))


def check_budget(taskset: TaskSet, ledger: Ledger, need: float, checked: float) -> bool:
    """Before training, given the ``least_budget`` it ``need``s: whether the budget affords
    the analysis (True), affords the baselines only and the task set asks for that (False),
    or neither (InvalidTaskSet, naming the training runs it needs, and the ``checked``
    level's)."""
    if need <= ledger.budget + 1e-9:
        return True
    if taskset.budget.when_short == "baselines":
        return False
    raise InvalidTaskSet(
        f"budget.training_runs: {ledger.budget:g} cannot afford two seeds of the baselines "
        f"and the finalists; this task set needs at least {math.ceil(need)} (planned from "
        "each network's rows; networks that train more epochs than the all-in-one one need "
        f"more), or at least {math.ceil(checked)} for its groupings predicted from one run "
        "and checked on one fresh seed; or set budget.when_short: baselines to compare the "
        "two baselines only")


def counted_default(taskset: TaskSet, ledger: Ledger, policy: Policy) -> None:
    """Once the unit is known: a default budget (the task set gives none) becomes the
    policy's ``default_flops`` of counted compute, in training runs."""
    if taskset.budget.training_runs is None and ledger.unit_steps and ledger.step_flops:
        ledger.budget = policy.default_flops / (ledger.unit_steps * ledger.step_flops)


def one_run_level(taskset: TaskSet, ledger: Ledger, n_tasks: int) -> float | None:
    """At the default budget, once the all-in-one network has trained: the least budget of
    the measured level (``least_budget``) where the counted budget is short of it (the
    network is too dear to measure: its own run's evidence predicts the groupings), else
    None. An explicit ``budget.training_runs`` always gets the measured level."""
    if taskset.budget.training_runs is not None or not ledger.step_flops:
        return None
    need = least_budget(ledger, n_tasks, finalist_allowance(taskset))
    return need if ledger.budget + 1e-9 < need else None


def reserve(ledger: Ledger, baseline: Sequence[Group], allowance: int, probe_seeds: int,
            n_tasks: int, policy: Policy) -> float:
    """Training runs kept, once the first seed's baselines are known, for the fresh seed
    (``confirmation_estimate`` at the policy's ``confirmation_margin``) and the other probe
    seeds (their all-in-one and single-task networks)."""
    singles: list[Group] = [(t,) for t in range(n_tasks)]
    return policy.confirmation_margin * confirmation_estimate(ledger, baseline, allowance) \
        + ledger.estimate([ledger.everyone, *singles]) * (probe_seeds - 1)
