"""The compute budget: what one training run costs here, what was spent, what a stage would.

The unit is one full training of one network on this data by the recipe: the wall time of
the all-in-one network of the first seed (its affinity sampling left out). A stage that
trains M networks as one stacked model is estimated from the stages run so far, where a step
costs alpha + beta * M seconds (M: the networks still training), and it runs as many steps,
relative to the unit's, as the stacked stages so far did (the stack until its slowest network
stops, each network until it stops). A network's steps grow with its *weight*: the share of
the unit's training rows it trains on (1 where every row is labelled for every task; on rows
of their own, a single task's network passes over an eighth of them per epoch where each of
8 tasks has an eighth), as its weight to a power fitted to the networks trained so far (fewer
rows pass in fewer steps but take more epochs to converge: about 0.35 on the bundled digits
with rows of their own, where a stack of small networks ran twice the unit's steps). The
planner (``analysis`` and ``race``) runs a stage only when its estimate fits in what is left.
What is left also counts the wall time between the stages (the measures, the candidate
selection), up to ``OVERHEAD_SHARE`` of the budget: on data so small that one training takes
milliseconds, those fixed costs would otherwise leave nothing for the race.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import nnls

OVERHEAD_SHARE = 0.25
"""The most of the budget that time between stages may take from the stages' share."""

STACK_SPEEDUP_GUESS = 3.0
"""Before any stacked stage ran: one more network in a stack costs 1/3 of a network alone
per step (measured on 2 CPU cores with small MLPs; GPUs batch better)."""


@dataclass
class Ledger:
    budget: float
    unit_seconds: float = 0.0
    unit_steps: int = 0
    seconds: float = 0.0
    network_steps: float = 0.0
    stages: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    """When the analysis started (``time.perf_counter``)."""
    _stage_started: float | None = None

    def set_unit(self, seconds: float, steps: int) -> None:
        """One full training of one network took ``seconds`` over ``steps`` steps."""
        self.unit_seconds, self.unit_steps = max(seconds, 1e-9), max(steps, 1)

    @property
    def spent(self) -> float:
        """Training runs spent so far (0 until the unit is known)."""
        return self.seconds / self.unit_seconds if self.unit_seconds else 0.0

    def live(self) -> float:
        """Training runs spent, the stage under way included."""
        running = time.perf_counter() - self._stage_started if self._stage_started else 0.0
        return (self.seconds + running) / self.unit_seconds if self.unit_seconds else 0.0

    @property
    def wall_spent(self) -> float:
        """Wall time since the analysis started, in training runs (0 until the unit is known)."""
        return (time.perf_counter() - self.started) / self.unit_seconds if self.unit_seconds \
            else 0.0

    @property
    def remaining(self) -> float:
        overhead = max(0.0, self.wall_spent - self.spent)
        return self.budget - self.spent - min(overhead, OVERHEAD_SHARE * self.budget)

    def estimate(self, weights: Sequence[float]) -> float:
        """Training runs a stacked stage of networks of these ``weights`` would cost: alpha
        seconds per step of the stack and beta per step of each network (fitted to the stages
        run so far; the unit network is a stack of one), over the steps the stretches foresee
        (the stack's for its widest network, each network's for its weight)."""
        if not self.unit_seconds or not len(weights):
            return 0.0
        alpha, beta = self._step_model()
        power = self._exponent()
        (stack, network), (widest, work) = self._stretches(power), self._sizes(weights, power)
        return (alpha * stack * widest + beta * network * work) \
            * self.unit_steps / self.unit_seconds

    def _runs(self) -> list[dict[str, Any]]:
        """The stacked stages that ran their course (not cut short by the budget)."""
        return [s for s in self.stages if s["networks"] > 1 and s["steps"]
                and not s.get("timing_only") and not s.get("cut")]

    def _sizes(self, weights: Sequence[float], power: float) -> tuple[float, float]:
        """The largest and the summed sizes of a stage's networks: each its weight to the
        ``power`` (``_exponent``). Before any stacked stage ran, every network is planned at
        size 1: by how much fewer rows shorten a network's training is not known yet."""
        if not self._runs():
            return 1.0, float(len(weights))
        sizes = np.power(np.asarray(weights, dtype=float), power)
        return float(sizes.max()), float(sizes.sum())

    def _exponent(self) -> float:
        """How a network's steps grow with its weight: the slope of log steps on log weight
        over the unit network and every network of the stacked stages so far, within [0, 1]
        (0: as many steps on fewer rows, 1: in proportion to them); 1 while the weights
        hardly differ (every row labelled for every task), where it does not matter."""
        weights, steps = [1.0], [float(self.unit_steps)]
        for s in self._runs():
            weights += s.get("_weights", [])
            steps += s.get("_member_steps", [])
        logs = np.log(np.maximum(weights, 1e-9))
        if np.ptp(logs) < 0.1:
            return 1.0
        slope = np.polyfit(logs, np.log(np.maximum(steps, 1.0)), 1)[0]
        return float(np.clip(slope, 0.0, 1.0))

    def _stretches(self, power: float) -> tuple[float, float]:
        """How long stacked stages run, relative to the unit's steps: the stack per size of
        its largest network (until its slowest network stops: on 2 CPU cores 0.8 to 2.6 times
        the unit's steps) and each network per unit of size (until it stops: 0.4 to 1.2 times
        where every network trains on every row); the means over the stacked stages so far,
        1 before any; sizes are weights to the ``power``."""
        runs = []
        for s in self._runs():
            sizes = np.power(s.get("_weights") or [1.0] * s["networks"], power)
            runs.append((s["steps"] / sizes.max() / self.unit_steps,
                         s["network_steps"] / sizes.sum() / self.unit_steps))
        if not runs:
            return 1.0, 1.0
        stack, network = np.mean(runs, axis=0)
        return float(stack), float(network)

    def _step_model(self) -> tuple[float, float]:
        one = self.unit_seconds / self.unit_steps
        rows = [(s["steps"], s["network_steps"], s["seconds"]) for s in self.stages
                if s["networks"] > 1 and s["steps"]]
        if not rows:
            return one * (1 - 1 / STACK_SPEEDUP_GUESS), one / STACK_SPEEDUP_GUESS
        design = np.array([[self.unit_steps, self.unit_steps]] + [[a, b] for a, b, _ in rows])
        seconds = np.array([self.unit_seconds] + [c for _, _, c in rows])
        alpha, beta = nnls(design, seconds)[0]
        return float(alpha), float(max(beta, 1e-12))

    def calibrate(self, n_networks: int, step_seconds: float) -> None:
        """A measured step time of a stack of ``n_networks`` (a few steps timed before a
        stage): the cost model fits it with the stages run so far."""
        self.stages.append({"stage": "step time", "networks": n_networks, "seed": -1,
                            "steps": 1, "network_steps": n_networks,
                            "seconds": step_seconds, "training_runs": 0.0, "timing_only": True})

    def most_networks(self, share: float, weights: Sequence[float] = (1.0,)) -> int:
        """The most networks like these (of their mean weight, the widest of their widest) a
        stacked stage may hold within ``share`` of what is left."""
        if not self.unit_seconds:
            return 1 << 30
        alpha, beta = self._step_model()
        power = self._exponent()
        (stack, network), (widest, work) = self._stretches(power), self._sizes(weights, power)
        per_step = share * self.remaining * self.unit_seconds / self.unit_steps
        return int(max(0.0, (per_step - alpha * stack * widest)
                       / (beta * network * work / len(weights)) + 1e-9))

    def affords(self, weights: Sequence[float], share: float = 1.0,
                then: Sequence[float] = ()) -> bool:
        """Whether a stacked stage of networks of ``weights`` fits in ``share`` of what is
        left (``share`` > 1: is estimated within that much of it), and leaves enough for a
        later stage of networks of weights ``then``."""
        cost = self.estimate(weights)
        return cost <= share * self.remaining + 1e-9 \
            and (not len(then) or cost + self.estimate(then) <= self.remaining + 1e-9)

    @contextmanager
    def stage(self, name: str, n_networks: int, seed: int) -> Iterator[dict[str, Any]]:
        """Time a stage; the body sets ``steps`` (of the stack) and ``network_steps`` (summed
        over its networks) in the yielded record, and for trained groups each network's
        weight and steps in ``_weights`` and ``_member_steps`` (without them, every network
        counts at weight 1); the record keeps their sum (``work``) and largest (``widest``)
        weight, and ``cost`` leaves the lists out."""
        record: dict[str, Any] = {"stage": name, "networks": n_networks, "seed": seed,
                                  "steps": 0, "network_steps": 0}
        started = self._stage_started = time.perf_counter()
        yield record
        elapsed = time.perf_counter() - started
        self._stage_started = None
        if record.get("_weights"):
            record["work"] = round(sum(record["_weights"]), 4)
            record["widest"] = round(max(record["_weights"]), 4)
        self.seconds += elapsed
        self.network_steps += record["network_steps"]
        record["seconds"] = round(elapsed, 3)
        self.stages.append(record)

    def cost(self) -> dict[str, Any]:
        """``meta.cost``: spent training runs (wall time), the same as network trainings
        (network-steps over the unit's steps), the unit and the stages."""
        return {
            "training_runs": round(self.spent, 3),
            "budget": round(self.budget, 3),
            "network_trainings": round(self.network_steps / max(self.unit_steps, 1), 3),
            "unit_seconds": round(self.unit_seconds, 4),
            "seconds": round(self.seconds, 3),
            "stages": [{**{k: v for k, v in s.items() if not k.startswith("_")},
                        "training_runs": round(s["seconds"] / self.unit_seconds, 3)
                        if self.unit_seconds and not s.get("timing_only") else 0.0}
                       for s in self.stages],
        }
