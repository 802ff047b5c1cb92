"""Verification as a race: candidates are trained over seeds, the worse half dropped each round.

A contest is one decision: the groups for a budget k (its score: the total validation loss of
every task, each at its best group), or the auxiliary tasks of a primary p (its score: p's
loss). Each candidate is a set of groups; a group's network is trained once per seed and
shared by every candidate that uses it. Each round trains, on a new seed, the groups that the
contests' surviving candidates and baselines still miss, then halves every contest by mean
score over the seeds so far (successive halving), until each contest has one finalist: the
race selects, and its seeds cannot confirm what they chose (``analysis.confirm`` measures the
finalists on fresh seeds, and ``stats.compare`` takes those). A round runs only when the plan
affords it; when it does not, the contests drop their worst candidates until it does. The
first round keeps room for a second (the baselines and each contest's best candidate on a
new seed).
Baselines (all-in-one and single-task; the primary alone) race in every round and are never
dropped, so every comparison is paired by seed. The statistics of a comparison are in
``stats.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

Group = tuple[int, ...]


@dataclass
class Candidate:
    groups: tuple[Group, ...]
    targets: tuple[int, ...]
    """The tasks whose summed loss (each at its best group) is the score."""
    kind: str = "groups"
    """groups, all_in_one, single_task (grouping baselines) or alone (auxiliary baseline)."""
    sources: list[str] = field(default_factory=list)


class Measurements:
    """Validation losses of trained group networks: ``loss[(group, seed)]`` of shape (T,)."""

    def __init__(self) -> None:
        self.loss: dict[tuple[Group, int], np.ndarray] = {}

    def add(self, seed: int, members: Sequence[Group], val_loss: np.ndarray) -> None:
        for m, group in enumerate(members):
            self.loss[tuple(sorted(group)), seed] = np.asarray(val_loss[m], dtype=float)

    def has(self, group: Group, seed: int) -> bool:
        return (group, seed) in self.loss

    def trained(self) -> set[Group]:
        """Every group whose network trained, on any seed."""
        return {g for g, _ in self.loss}

    def task_losses(self, candidate: Candidate, seeds: Sequence[int],
                    serve_on: Sequence[int] | None = None) -> np.ndarray:
        """Loss of each target task on each seed, shape (seeds, targets), each task served by
        one group of the candidate (``served``: chosen on ``serve_on``, default ``seeds``; a
        task's least loss on each seed would favour every task in two groups by the luck of
        its better seed, and the seeds that chose the serving group would flatter it). Only
        the serving networks are read: a seed needs no other."""
        serving = self.served(candidate, serve_on if serve_on is not None else seeds, seeds)
        groups = [candidate.groups[i] for i in serving.tolist()]
        missing = [(g, s) for s in seeds for g in dict.fromkeys(groups) if not self.has(g, s)]
        if missing or not seeds:
            raise LookupError(f"{candidate.kind} {candidate.groups}: no network trained for "
                              f"{missing or 'no seed'}")
        return np.array([[self.loss[g, s][t] for g, t in zip(groups, candidate.targets,
                                                               strict=True)] for s in seeds])

    def served(self, candidate: Candidate, serve_on: Sequence[int],
               fallback: Sequence[int] = ()) -> np.ndarray:
        """For each target, the index of the candidate's group that serves it: the one group
        that holds it, else the one of least mean loss on it over the seeds of ``serve_on``
        that trained every group holding it (those that chose the candidate), else over such
        seeds of ``fallback`` (a candidate chosen by prediction, first measured where it is
        compared); LookupError where neither has one."""
        out = []
        for t in candidate.targets:
            holding = [i for i, g in enumerate(candidate.groups) if t in g]
            if len(holding) > 1:
                on = self._all_trained([candidate.groups[i] for i in holding], serve_on) or \
                    self._all_trained([candidate.groups[i] for i in holding], fallback)
                if not on:
                    raise LookupError(f"{candidate.kind} {candidate.groups}: no seed trained "
                                      f"every group of task {t} to choose its serving one")
                holding = [min(holding, key=lambda i: float(np.mean(
                    [self.loss[candidate.groups[i], s][t] for s in on])))]
            out.append(holding[0])
        return np.array(out, dtype=int)

    def serving_seeds(self, candidate: Candidate, seeds: Sequence[int],
                      serve_on: Sequence[int]) -> list[int]:
        """The ``seeds`` that trained every network serving one of the candidate's tasks
        (``served`` chooses on ``serve_on``, else on ``seeds``)."""
        if not self.can_serve(candidate, serve_on) and not self.can_serve(candidate, seeds):
            return []
        serving = self.served(candidate, serve_on, seeds).tolist()
        return self._all_trained([candidate.groups[i] for i in set(serving)], seeds)

    def mean(self, groups: Sequence[Group], seeds: Sequence[int]) -> np.ndarray:
        """Each group's losses averaged over ``seeds`` (each trained it), shape
        (groups, tasks), NaN off-group."""
        return np.array([np.mean([self.loss[g, s] for s in seeds], axis=0) for g in groups])

    def chosen_on(self, candidate: Candidate, selection: Sequence[int],
                  fresh: Sequence[int]) -> list[int]:
        """The seeds a candidate's serving groups are chosen on: the ``selection`` seeds that
        trained it whole (those that chose it), else, for a candidate chosen by prediction,
        the ``fresh`` seeds it is first measured on."""
        return self.measured_on([candidate], selection) or list(fresh)

    def can_serve(self, candidate: Candidate, seeds: Sequence[int]) -> bool:
        """Whether ``served`` can choose on ``seeds``: each task held by two groups or more
        has a seed there that trained them all."""
        return all(self._all_trained([g for g in candidate.groups if t in g], seeds)
                   for t in candidate.targets if sum(t in g for g in candidate.groups) > 1)

    def _all_trained(self, groups: Sequence[Group], seeds: Sequence[int]) -> list[int]:
        return [s for s in seeds if all(self.has(g, s) for g in groups)]

    def measured_on(self, candidates: Sequence[Candidate], seeds: Sequence[int]) -> list[int]:
        """The ``seeds`` on which every group of every candidate was measured."""
        return self._all_trained([g for c in candidates for g in c.groups], seeds)

    def total(self, candidate: Candidate, serve_on: Sequence[int] = ()) -> float:
        """The candidate's mean total loss over every seed that trained all its networks
        (each task served as ``served`` chooses on ``serve_on``)."""
        whole = self.measured_on([candidate], sorted({s for _, s in self.loss}))
        return max(float(self.scores(candidate, whole, list(serve_on) or whole).mean()), 1e-12)

    def scores(self, candidate: Candidate, seeds: Sequence[int],
               serve_on: Sequence[int] | None = None) -> np.ndarray:
        """Total loss of the candidate's targets on each seed, shape (seeds,)."""
        return self.task_losses(candidate, seeds, serve_on).sum(axis=1)


@dataclass
class Contest:
    name: str
    candidates: list[Candidate]
    """In priority order (best predicted first); dropped first from the end in round 0."""
    baselines: list[Candidate]
    entered: list[Candidate] = field(default_factory=list)
    """Every candidate the contest started with (``candidates`` are its survivors)."""

    def __post_init__(self) -> None:
        self.entered = self.entered or list(self.candidates)

    def enter(self, candidate: Candidate) -> None:
        """Put ``candidate`` first (where the contest already holds its groups, that one),
        among the survivors and the entered."""
        same = [c for c in self.entered if c.groups == candidate.groups]
        first = same[0] if same else candidate
        if same:
            first.sources.extend(s for s in candidate.sources if s not in first.sources)
        self.candidates = [first, *(c for c in self.candidates if c is not first)]
        self.entered = [first, *(c for c in self.entered if c is not first)]

    def alive_groups(self) -> set[Group]:
        return {g for c in self.candidates + self.baselines for g in c.groups}


Differing = list[tuple[int, Group, Group]]


def differing(measured: Measurements, candidate: Candidate, baseline: Candidate,
              serve_on: Sequence[int], fallback: Sequence[int] = ()) -> Differing:
    """(task, the candidate's network serving it, the baseline's) for each target whose
    serving network differs between the two (``Measurements.served``): a task served by
    the same network on both sides adds exactly zero to every seed's difference."""
    ours = measured.served(candidate, serve_on, fallback).tolist()
    theirs = measured.served(baseline, serve_on, fallback).tolist()
    return [(t, candidate.groups[a], baseline.groups[b])
            for t, a, b in zip(candidate.targets, ours, theirs, strict=True)
            if candidate.groups[a] != baseline.groups[b]]


def comparable_on(measured: Measurements, candidate: Candidate, baseline: Candidate,
                  seeds: Sequence[int], serve_on: Sequence[int] | None = None) -> list[int]:
    """The ``seeds`` that trained every network in which the two differ (``differing``,
    the serving chosen on ``serve_on``, else on ``seeds``)."""
    parts = differing(measured, candidate, baseline,
                      serve_on if serve_on is not None else seeds, seeds)
    return [s for s in seeds if all(measured.has(g, s) for _, a, b in parts for g in (a, b))]


def to_confirm(candidate: Candidate, baseline: Candidate) -> list[Group]:
    """The networks to train on a fresh seed to compare the two, before their serving is
    known: the candidate's groups that the baseline lacks, and the baseline's groups that
    serve their tasks (a superset of ``differing``'s networks)."""
    new = [g for g in candidate.groups if g not in baseline.groups]
    held = {t for g in new for t in g}
    return sorted(set(new) | {g for g in baseline.groups if held & set(g)},
                  key=lambda g: (len(g), g))


Train = Callable[[list[Group], int, list[Group]], object]
"""``train(groups, seed, then)``: trains the groups on a seed and adds them to the
measurements, stopping the networks in time to leave enough for the networks of ``then``."""
Affords = Callable[[list[Group], float, list[Group]], bool]
"""``affords(groups, share, then)``: whether the networks of ``groups`` fit in ``share`` of
what is left (more than all of it where ``share`` > 1), leaving enough for the networks of
``then`` later."""


def run_race(contests: list[Contest], measured: Measurements, seeds: Sequence[int],
             train: Train, affords: Affords, *, min_seeds: int = 1,
             planned_rounds: int = 3, leaders: int = 1) -> list[int]:
    """Select each contest's finalist: race every contest over ``seeds`` in order, halving
    them after each round (never below its ``leaders`` best, who race on while the budget
    lasts), until each is down to one candidate; return the seeds every
    survivor was measured on (the selection seeds: they chose the finalists, so they cannot
    confirm them). Round r may spend 1 / (planned_rounds - r) of what ``affords`` leaves (so
    that it lasts ``planned_rounds`` rounds), all of it from then on; the first round also
    keeps room for the least second round (every baseline and each contest's best
    candidate). The first ``min_seeds`` rounds drop candidates until affordable; later rounds
    stop the race when even one candidate per contest is not."""
    used: list[int] = []
    for r, seed in enumerate(seeds):
        if r > 0:
            for contest in contests:
                contest.candidates = _halve(contest.candidates, measured, used, leaders)
            if all(len(contest.candidates) <= 1 for contest in contests):
                break
        share = 1.0 / max(1, planned_rounds - r)
        then = sorted(least_round(contests)) if r == 0 and len(seeds) > 1 else []
        before = [list(contest.candidates) for contest in contests]
        needed: list[Group] | None
        while True:
            needed = sorted({g for c in contests for g in c.alive_groups()
                             if not measured.has(g, seed)}, key=lambda g: (len(g), g))
            if affords(needed, share, then):
                break
            widest = max(contests, key=lambda c: len(c.candidates))
            if len(widest.candidates) <= 1:  # the least this round can be: all that is left?
                needed = needed if affords(needed, 1.0, []) else None
                break
            widest.candidates = widest.candidates[:-1]
        if needed is None:
            if r >= min_seeds:
                break
            needed = []  # nothing affordable: measure what is already trained on this seed
            for contest, candidates in zip(contests, before, strict=True):
                contest.candidates = [c for c in candidates
                                      if all(measured.has(g, seed) for g in c.groups)]
            if not all(measured.has(g, seed) for c in contests for b in c.baselines
                       for g in b.groups):
                break
        if needed:
            train(needed, seed, then)
        used.append(seed)
    return used


def planned_race(contests: list[Contest], measured: Measurements, seeds: Sequence[int],
                 estimate: Callable[[list[Group]], float], room: float,
                 leaders: int = 1) -> float:
    """Training runs the race is expected to cost, for the progress' plan (never for a
    choice): its rounds on ``seeds`` halved as ``run_race`` halves them (the candidates in
    their current order: their scores are not known yet), each round the networks not yet
    trained on its seed (``estimate``), until each contest is down to one candidate, or
    ``room`` (all of it where ``leaders`` race on while the budget lasts)."""
    if leaders > 1:
        return room
    alive = [list(contest.candidates) for contest in contests]
    total = 0.0
    for r, seed in enumerate(seeds):
        if r > 0:
            alive = [kept[:max(1, math.ceil(len(kept) / 2))] for kept in alive]
            if all(len(kept) <= 1 for kept in alive):
                break
        total += estimate(sorted({g for contest, kept in zip(contests, alive, strict=True)
                                  for c in kept + contest.baselines for g in c.groups
                                  if not measured.has(g, seed)}))
    return max(0.0, min(total, room))


def least_round(contests: list[Contest]) -> set[Group]:
    """The groups of a round on a new seed that keeps only each contest's best candidate."""
    return {g for c in contests for cand in c.baselines + c.candidates[:1] for g in cand.groups}


def _halve(candidates: list[Candidate], measured: Measurements,
           seeds: Sequence[int], leaders: int = 1) -> list[Candidate]:
    """The better half (at least ``leaders``, at least one) by mean score over ``seeds``,
    best first."""
    ranked = sorted(candidates, key=lambda c: measured.scores(c, seeds).mean())
    return ranked[:max(1, leaders, math.ceil(len(ranked) / 2))]


def winner(contest: Contest, measured: Measurements, seeds: Sequence[int]) -> Candidate | None:
    """What the race alone picked: the surviving candidate with the least mean score over
    ``seeds``, or None when none survived (a lone survivor wins unmeasured). The analysis
    decides by expected loss instead (``decision.py``)."""
    if len(contest.candidates) <= 1:
        return contest.candidates[0] if contest.candidates else None
    return min(contest.candidates, key=lambda c: measured.scores(c, seeds).mean())
