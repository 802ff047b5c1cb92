"""``analyze``: a task set in, a Result with its affinity matrices, groupings, auxiliary
choices and verdict out. ``Analysis.run`` reads as its steps:

1. ``plan`` (``plan.py``): the budget is counted compute, never seconds. Before anything
   trains, a budget that cannot afford the probes' seed and a fresh seed of the baselines and
   the finalists gets the checked level where it affords that (``one_run`` and
   ``checked.py``: groups predicted from the all-in-one run, checked on one fresh seed), and
   is refused below it (or, by ``budget.when_short``, only the baselines are compared). A
   default budget too small for the measured level gets the checked level, else the one-run
   level (the all-in-one run alone).
2. ``probes``, per probe seed: the all-in-one network (the joint probe, which samples
   gradient and lookahead affinities along its run), every single-task network, then the
   evidence: every subset where every subset fits twice, else the pairs (when ``pairwise``
   is asked for) and a few sampled larger groups, as many as fit beside the fresh seed.
   Every network trains by the task set's recipe to its own stopping point: the planner
   trims the evidence, never the training. The measures follow.
3. ``candidates`` from every predictor; ``contests`` for each k and each primary.
4. ``race``: successive halving over seeds, the probes' first, while the budget less the
   fresh seed's share lasts.
5. ``confirm``: each finalist against the better baseline on a fresh seed that chose
   nothing, training only the networks in which they differ.
6. ``decide``: the option of the lowest expected loss given all the evidence (a decision),
   and each comparison on fresh seeds only (a claim; ``decision.py``).
7. ``result``: the Result, built once.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata

from affinity.backbones import register as register_backbone
from affinity.candidates import (
    Source,
    auxiliary_contest,
    baselines,
    grouping_contest,
    measured_optimum,
    predictors,
)
from affinity.checked import Grouping, check_entry, checked_need, plan_check, pooled_spread
from affinity.data import Dataset, load_dataset
from affinity.executor import Executor, LocalExecutor
from affinity.flops import step_flops
from affinity.grouping.select import all_subsets
from affinity.grouping.surrogate import Surrogate, fit_surrogate
from affinity.measures import MEASURES, ProbeRun
from affinity.models import HeadFactory, LossFn, check_backbone, own_heads, resolve_device
from affinity.plan import (
    Ledger,
    Policy,
    check_budget,
    confirmation_estimate,
    counted_default,
    finalist_allowance,
    least_budget,
    one_run_level,
    raise_default_budget,
    reserve,
)
from affinity.probes.joint import JointProbe
from affinity.probes.subsets import SubsetProbe, merge_probes
from affinity.progress import Progress, ProgressCallback
from affinity.race import Contest, Group, Measurements, planned_race, run_race, to_confirm
from affinity.recommend import (
    auxiliary_choice,
    better_baseline,
    clusterings,
    finalist,
    grouping_entry,
    predicted_entry,
    ranked_auxiliaries,
)
from affinity.result import MeasureResult, Result
from affinity.result_models import Cost, GroupingEntry, Meta, NextLevel, Verification
from affinity.taskset import DEFAULT_DRIVERS, InvalidTaskSet, TaskSet
from affinity.verdict import groups_text, verdict

MAX_RACE_SEEDS = 8
ONE_RUN = ("lookahead", "grad_cosine")
"""The measures the all-in-one run gives alone (the one-run level's evidence), the first
driving."""
CONFIRMATION_FIRST_SEED = 500  # the exhaustive ground truth trains on seeds 1000, 1001, ...
SAMPLE_SEED = 20_240_601  # the sampled larger groups do not depend on the probes' seeds


def probe_members(needs: set[str], n_tasks: int, sampled: int = 0,
                  seed: int = 0) -> list[Group]:
    """Single-task networks (the baseline), pairs when a measure needs them, and ``sampled``
    random groups of 3 to T - 1 tasks (drawn by the task set's ``seed``)."""
    members: list[Group] = [(t,) for t in range(n_tasks)]
    if "pairs" in needs:
        members += list(itertools.combinations(range(n_tasks), 2))
    rng = np.random.default_rng(SAMPLE_SEED + seed)
    tries = 0
    while sampled and n_tasks >= 4 and tries < 100 * sampled:
        tries += 1
        size = int(rng.integers(3, n_tasks))
        group = tuple(sorted(rng.choice(n_tasks, size, replace=False).tolist()))
        if group not in members:
            members.append(group)
            sampled -= 1
    return members


def network_rows(data: Dataset) -> Callable[[Sequence[Group]], list[int]]:
    """Each group's network's training rows: those labelled for one of its tasks."""
    labelled = data.labelled(data.y_train)
    known: dict[Group, int] = {}  # the race asks for the same groups many times

    def rows(groups: Sequence[Group]) -> list[int]:
        for g in groups:
            if g not in known:
                known[g] = int(labelled[:, list(g)].any(1).sum())
        return [known[g] for g in groups]
    return rows


def analyze(taskset: TaskSet, *, base_dir: str | Path | None = None,
            device: str | torch.device = "auto",
            data: Dataset | None = None, progress: ProgressCallback | None = None,
            executor: Executor | None = None,
            trunk: Callable[..., torch.nn.Module] | None = None,
            heads: Mapping[str, HeadFactory] | None = None,
            losses: Mapping[str, LossFn] | None = None,
            policy: Policy | None = None) -> Result:
    """Probe, measure, race, confirm and decide; see the module docstring.

    ``data``: the data instead of the task set's ``data`` (``affinity.tensors``).
    ``executor`` trains the networks, the all-in-one one and the stacked ones (default:
    ``LocalExecutor``, in this process).
    ``trunk``: your own shared network, a factory ``(input_shape) -> nn.Module`` mapping a
    batch (N, *input_shape) to features (N, width) (its options: ``functools.partial``); it
    replaces the task set's ``model``. ``heads``: per task, a factory ``(width) -> nn.Module``
    mapping features (N, width) to outputs (N, *shape); ``losses``: per task, ``(outputs,
    targets) -> losses`` per row or per element (``reduction="none"``). Others keep a linear
    head and their type's loss. Python code runs in this process only: with the local
    executor, not on Ray workers or the service. ``policy``: what the budget buys
    (``plan.Policy``; its defaults unless given)."""
    own_code = {k for k, v in (("trunk", trunk), ("heads", heads), ("losses", losses)) if v}
    if own_code and executor is not None and not isinstance(executor, LocalExecutor):
        raise ValueError(f"{', '.join(sorted(own_code))}: Python code runs in this process "
                         "only; use the local executor, or install a backbone package")
    if trunk is not None:
        name = register_backbone(f"python:{getattr(trunk, '__qualname__', 'trunk')}", trunk)
        taskset = taskset.model_copy(update={"model": taskset.model.model_copy(
            update={"backbone": name, "hidden": None, "options": {}})})
    import torch._dynamo  # noqa: F401  # the first optimizer imports it (about 1 s): not a training cost
    dev = resolve_device(device)
    data = (data or load_dataset(taskset, base_dir)).to(dev)
    width = check_backbone(taskset.model, data.input_shape)
    if heads or losses:
        data = own_heads(taskset.model, data, heads or {}, losses or {}, width)
    _check_tasks(taskset, data)
    return Analysis(taskset, data, dev, executor or LocalExecutor(), progress, policy).run()


class Analysis:
    """One analysis, step by step (``run`` calls them in order): ``plan``, ``probes``,
    ``candidates``, ``race``, ``confirm``, ``decide``; the ``Result`` is built once, at the
    end. What the steps share: the data, the device, the ledger, the measurements."""

    def __init__(self, taskset: TaskSet, data: Dataset, device: torch.device,
                 executor: Executor, progress: ProgressCallback | None = None,
                 policy: Policy | None = None) -> None:
        self.taskset, self.data, self.device, self.executor = taskset, data, device, executor
        self.policy = policy or Policy()
        n = data.n_tasks
        self.tasks = taskset.task_names
        self.ledger = Ledger(taskset.training_runs, taskset.training.batch_size,
                             network_rows(data), tuple(range(n)), taskset.budget.max_seconds,
                             step_flops=step_flops(taskset, data))
        self.progress = Progress(self.ledger.budget, progress)
        self.measured = Measurements()
        self.probe_seeds = taskset.probe.seeds or 1
        self.seed = taskset.seed
        """The base of every seed: probes ``seed``, ``seed + 1``, ..., the race's from
        ``seed``, the fresh ones from ``seed + CONFIRMATION_FIRST_SEED``."""
        self.probe_seed_list = [self.seed + i for i in range(self.probe_seeds)]
        self.reserve = 0.0
        """Training runs kept for the confirmation seeds (set once the first seed's
        baselines are known)."""
        self.warnings: list[str] = list(data.warnings)
        self.one_run_need: float | None = None
        """The least budget of the measured level, where the default budget is short of it
        (the one-run level); None otherwise."""
        self.meta: dict[str, Any] = {}

    def run(self) -> Result:
        """Plan, probe, propose, race, confirm, decide; the Result. A network too dear for
        the default budget stops after its all-in-one run: the one-run level."""
        full = self.plan()
        affinity, diagnostics, members = self.probes(full)
        if self.one_run_need is not None:
            return self.one_run(affinity, diagnostics, self.one_run_need)
        sources = self.candidates(affinity, members)
        if not self.taskset.verify:
            groupings = [predicted_entry(self.tasks, sources[0], k, self.measured)
                         for k in self.taskset.budgets]
            return self.result(affinity, diagnostics, groupings, None)
        contests, aux = self.contests(sources if full else [])
        selection = self.race(contests, aux)
        confirmation = self.confirm(contests, aux, selection)
        groupings, verification = self.decide(contests, aux, selection, confirmation)
        return self.result(affinity, diagnostics, groupings, verification)

    def plan(self) -> bool:
        """Before training: whether the budget affords the analysis (True), or only the
        baselines (False, by ``budget.when_short``); refused otherwise (``check_budget``).
        A default budget is settled once the all-in-one network has trained (counted
        compute; the one-run level where that is short of the measured level)."""
        n, ledger = self.data.n_tasks, self.ledger
        if self.taskset.budget.training_runs is None:
            return True
        need = least_budget(ledger, n, finalist_allowance(self.taskset))
        raise_default_budget(self.taskset, ledger, need)
        self.progress.total = ledger.budget
        checked = checked_need(ledger, n, self.taskset.budgets,
                               self.seed + CONFIRMATION_FIRST_SEED)
        if checked <= ledger.budget + 1e-9 < need and self.taskset.budget.when_short == "refuse":
            self.one_run_need = need  # the checked level: predicted, then one fresh seed
            return True
        full = check_budget(self.taskset, ledger, need, checked)
        if not full:
            self.warnings.append(
                f"budget.training_runs: {ledger.budget:g} cannot afford two seeds of the "
                f"baselines and the finalists (at least {math.ceil(need)} would): only the "
                "two baselines were trained and compared (budget.when_short: baselines)")
        return full

    def probes(self, full: bool) -> tuple[dict[str, MeasureResult],
                                          dict[str, MeasureResult], list[Group]]:
        """Per probe seed: the all-in-one network, the single-task networks, then the pairs
        and sampled larger groups that fit beside the confirmation seeds (all of them only
        when ``full``); the measures from them, the diagnostics, the networks trained."""
        taskset, data, ledger, n = self.taskset, self.data, self.ledger, self.data.n_tasks
        measures = [MEASURES[name] for name in taskset.measures]
        needs = set().union(*(m.needs for m in measures))
        sampled = n // 2 if taskset.verify and "pairs" in needs else 0
        wanted = probe_members(needs, n, sampled, self.seed) if full else \
            probe_members(set(), n)
        singles = wanted[:n]
        per_seed: dict[str, list[np.ndarray]] = {m.name: [] for m in measures}
        conflicts: list[np.ndarray] = []
        members = singles
        for i, seed in enumerate(self.probe_seed_list):
            label = f"(seed {i + 1}/{self.probe_seeds})"
            joint = self.joint(seed, label)
            conflicts.append(joint.conflict_rate)
            if i == 0:
                if self.one_run_need is None:
                    self.one_run_need = one_run_level(taskset, ledger, n)
                if self.one_run_need is not None:
                    run = ProbeRun(taskset, data, seed, joint, None)
                    one_run = {name: MeasureResult.from_seeds([np.asarray(
                        MEASURES[name].compute(run), dtype=float)]) for name in ONE_RUN}
                    return one_run, {"conflict_rate": MeasureResult.from_seeds(conflicts)}, []
            parts = [self.train(singles, seed, f"{n} single-task networks {label}")]
            if i == 0:
                self.reserve = reserve(
                    ledger, better_baseline(baselines(n), self.measured, [seed]).groups,
                    finalist_allowance(taskset), self.probe_seeds, n, self.policy)
                # planned again from the first seed's epochs: networks that train longer
                # than the all-in-one one cost more than planned before training
                raise_default_budget(taskset, ledger, ledger.spent + self.reserve)
                self.progress.total = ledger.budget
                room = ledger.remaining - self.reserve
                every = [g for g in all_subsets(n) if 1 < len(g) < n]
                # every subset on two seeds (this one and a race round) fits: all of them,
                # and the measured optimum of every k enters the race
                members = singles + (every if needs & {"pairs"} and taskset.verify
                                     and 2 * ledger.estimate(every) <= room else
                                     evidence(wanted[n:], ledger,
                                              self.policy.evidence_share * room, joint))
            if len(members) > n:
                parts.append(self.train(members[n:], seed,
                                        f"{len(members) - n} evidence networks {label}"))
            subsets = merge_probes(parts, self.device)
            run = ProbeRun(taskset, data, seed, joint, subsets)
            for m in measures:
                self.progress.enter(f"measure {m.name} {label}")  # also the service's heartbeat
                per_seed[m.name].append(np.asarray(m.compute(run), dtype=float))
        affinity = {k: MeasureResult.from_seeds(v) for k, v in per_seed.items()}
        diagnostics = {"conflict_rate": MeasureResult.from_seeds(conflicts)}
        if "pairs" in needs:
            untrained = [[self.tasks[i], self.tasks[j]]
                         for i, j in itertools.combinations(range(n), 2)
                         if (i, j) not in members]
            if untrained:  # the budget could not train every pair (see ``evidence``)
                self.meta["untrained_pairs"] = untrained
                missing = [tuple(self.tasks.index(t) for t in p) for p in untrained]
                more = math.ceil(ledger.budget
                                 + ledger.estimate(missing) / self.policy.evidence_share)
                self.warnings.append(
                    f"pairwise: {len(untrained)} of {n * (n - 1) // 2} pairs were not trained "
                    "(the budget did not reach them); their cells hold the mean of their "
                    "target's trained pairs, not a measurement, and the auxiliary ranking "
                    f"reads them so; budget.training_runs: {more} would train every pair")
        return affinity, diagnostics, members

    def candidates(self, affinity: dict[str, MeasureResult],
                   members: list[Group]) -> list[Source]:
        """Every predictor of group gains (``recommend.predictors``), the surrogate fitted
        to the trained groups among them; the driving measure falls back where the budget
        trained no pair."""
        self.taskset = _driver_with_evidence(self.taskset, members, self.warnings)
        self.progress.enter("clusterings and candidates")
        surrogate = _fitted_surrogate(affinity, self.measured, members, self.probe_seed_list)
        sources = predictors(affinity, self.taskset, surrogate)
        self.meta["predictors"] = [name for name, _, _ in sources]
        if surrogate:
            self.meta["surrogate_slopes"] = dict(zip(self.tasks, surrogate.slopes.round(6)
                                                     .tolist(), strict=True))
        return sources

    def contests(self, sources: list[Source]) -> tuple[dict[int, Contest], dict[str, Contest]]:
        """Each k's contest of candidate groupings (the measured optimum first where every
        subset was trained) and each primary's contest of auxiliary sets; without
        ``sources`` (only the baselines compared) the contests hold no candidate."""
        n, tasks = self.data.n_tasks, self.tasks
        grouping: dict[int, Contest] = {}
        exhaustive = bool(sources) and self.exhaustive(self.probe_seed_list)
        for k in self.taskset.budgets:
            self.progress.enter(f"candidate groupings for k={k}")
            grouping[k] = grouping_contest(sources, n, k, self.taskset.grouping.candidates) \
                if sources else Contest(f"k={k}", [], baselines(n))
            if exhaustive:  # every subset measured: the measured optimum races first
                grouping[k].enter(measured_optimum(self.measured, n, k, self.probe_seed_list))
        primaries = self.taskset.auxiliary.primary or tasks
        aux = {p: auxiliary_contest(sources, tasks.index(p), list(grouping.values()),
                                    self.taskset.auxiliary.max_aux)
               for p in primaries} if sources else {}
        return grouping, aux

    def race(self, grouping: dict[int, Contest], aux: dict[str, Contest]) -> list[int]:
        """The selection: successive halving over seeds (``race.run_race``) while the budget
        less the fresh seed's share lasts; the seeds it measured every survivor on."""
        ledger = self.ledger
        if not any(c.candidates for c in [*grouping.values(), *aux.values()]):
            return list(self.probe_seed_list)

        def affords(groups: list[Group], share: float, then: list[Group]) -> bool:
            room = ledger.remaining - self.reserve
            cost = ledger.estimate(groups)
            return not ledger.out_of_time() and cost <= share * room + 1e-9 \
                and cost + ledger.estimate(then) <= room + 1e-9

        seeds = [self.seed + i for i in range(max(MAX_RACE_SEEDS, self.probe_seeds))]
        contests = [*grouping.values(), *aux.values()]
        better = better_baseline(baselines(self.data.n_tasks), self.measured,
                                 self.probe_seed_list)
        self.progress.total = min(ledger.budget, ledger.spent + planned_race(
            contests, self.measured, seeds, ledger.estimate, ledger.remaining - self.reserve,
            self.policy.race_leaders) + confirmation_estimate(
            ledger, better.groups, finalist_allowance(self.taskset)))
        return run_race(contests, self.measured, seeds,
                        lambda groups, seed, _then: self.train(
                            groups, seed, f"race: {len(groups)} networks (seed {seed + 1})"),
                        affords, leaders=self.policy.race_leaders)

    def confirm(self, grouping: dict[int, Contest], aux: dict[str, Contest],
                selection: list[int]) -> list[int]:
        """The confirmation on fresh seeds that chose nothing, training only the networks in
        which each finalist and the better baseline differ (``race.to_confirm``: a task
        served by the same network on both sides adds nothing to their comparison): each
        k's finalist (where the race measured none for k, the best-ranked candidate that
        fits, chosen by prediction); then, where they fit, the other baseline against the
        better one and each primary's best auxiliary set against the primary alone,
        cheapest first. A second fresh seed for comparisons with a network never trained
        before (a finalist chosen by prediction has no spread of its own to pool). A seed
        starts only where its planned cost fits. Returns the seeds trained."""
        ledger, measured = self.ledger, self.measured
        final = {k: finalist(c, measured, selection) for k, c in grouping.items()}
        allowance = finalist_allowance(self.taskset) * ledger.estimate([ledger.everyone])
        for k, contest in grouping.items():
            if final[k][0] is not None or not contest.entered:
                continue
            confirming = {g for best, base in final.values() if best
                          for g in to_confirm(best, base)}
            for candidate in contest.entered:
                more = confirming | set(to_confirm(candidate, final[k][1]))
                if self.policy.confirmation_margin * ledger.estimate(sorted(more)) \
                        <= ledger.remaining + 1e-9 \
                        or ledger.estimate(sorted(more - confirming)) <= allowance + 1e-9:
                    contest.candidates = [candidate]
                    final[k] = (candidate, final[k][1])
                    break
        required = [(best, base) for best, base in final.values() if best]
        aux_final = {p: finalist(c, measured, selection)[0] for p, c in aux.items()}
        paired = sorted(((c, aux[p].baselines[0]) for p, c in aux_final.items() if c),
                        key=lambda item: ledger.estimate(to_confirm(*item)))
        if final:  # one more seed that measured both baselines helps to pick the better one
            better = next(iter(final.values()))[1]
            other = next(b for b in baselines(self.data.n_tasks) if b.groups != better.groups)
            paired.insert(0, (other, better))
        trained = measured.trained()
        first = sorted({g for item in required for g in to_confirm(*item)}, key=_by_size)
        again = sorted({g for item in required if not set(to_confirm(*item)) <= trained
                        for g in to_confirm(*item)}, key=_by_size)
        for item in paired:
            extra = [g for g in to_confirm(*item) if g not in first]
            if ledger.affords([*first, *extra, *again]):
                first += extra
        second = ledger.estimate(again) if again and ledger.affords(first, again) else 0.0
        self.progress.total = min(ledger.budget, ledger.spent + ledger.estimate(first) + second)
        used: list[int] = []
        for i, groups in enumerate([first, again]):
            seed = self.seed + CONFIRMATION_FIRST_SEED + i
            if not groups or ledger.out_of_time() or not ledger.affords(groups):
                break
            todo = [g for g in groups if not measured.has(g, seed)]
            if todo:
                self.train(todo, seed, f"confirmation: {len(todo)} networks (fresh seed {i + 1})")
            used.append(seed)
        if not used and required:
            need = ledger.spent + ledger.estimate(first)
            self.warnings.append(
                "budget.training_runs: no fresh seed fitted to confirm the finalists, so no "
                f"comparison has an interval; about {math.ceil(max(need, ledger.budget + 1))} "
                "training runs would afford one")
        return used

    def decide(self, grouping: dict[int, Contest], aux: dict[str, Contest],
               selection: list[int], confirmation: list[int]
               ) -> tuple[list[GroupingEntry], Verification]:
        """Each k's groupings entry and each primary's auxiliary choice: the decision (the
        lowest expected loss given all the evidence) and the claim (fresh seeds only)."""
        groupings = [grouping_entry(self.tasks, grouping[k], self.measured, selection,
                                    confirmation, k) for k in self.taskset.budgets]
        choices = {p: auxiliary_choice(self.tasks, aux[p], self.measured, selection,
                                       confirmation) for p in aux}
        return groupings, Verification(seeds=selection + confirmation, selection_seeds=selection,
                                       confirmation_seeds=confirmation, auxiliary=choices)

    def result(self, affinity: dict[str, MeasureResult], diagnostics: dict[str, MeasureResult],
               groupings: list[GroupingEntry], verification: Verification | None,
               sentence: str | None = None) -> Result:
        """The Result, built once: the matrices, the decisions and their verdict (``sentence``
        where a step says it its own way), the clusterings and auxiliary rankings of the
        driving measure, the cost and warnings."""
        taskset, ledger = self.taskset, self.ledger
        auxiliary = ranked_auxiliaries(affinity, self.tasks, taskset)
        chosen = verification.auxiliary if verification else {}
        for p, ranked in auxiliary.items():
            for entry in ranked:
                entry["selected"] = p in chosen and entry["task"] in chosen[p].auxiliaries
        cut = [f"{s['stage']}: {s['cut']}" for s in ledger.stages if s.get("cut")]
        if cut:
            self.warnings.append(
                "budget.max_seconds: the time ran out while networks were still training ("
                + "; ".join(cut) + " networks); they were scored at their best epoch so far, "
                "short of convergence. Raise budget.max_seconds to train them out")
        cost = ledger.cost()
        self.progress.finish()
        return Result(
            tasks=self.tasks, affinity=affinity, diagnostics=diagnostics, groupings=groupings,
            verdict=sentence or verdict(groupings), auxiliary=auxiliary,
            clusterings=clusterings(affinity, self.tasks, taskset), verification=verification,
            meta=Meta(name=taskset.name, device=str(self.device), probe_seeds=self.probe_seeds,
                      n_train=len(self.data.x_train), n_val=len(self.data.x_val),
                      taskset=taskset.model_dump(mode="json"), torch=torch.__version__,
                      warnings=self.warnings, **self.meta, driving_measure=taskset.driver,
                      cost=Cost(**cost), seconds=cost["seconds"]))

    def one_run(self, affinity: dict[str, MeasureResult],
                diagnostics: dict[str, MeasureResult], need: float) -> Result:
        """The one-run level: each k's groups predicted from the all-in-one run's own
        evidence (its lookahead drives), named as predicted, with what measuring them would
        cost in training runs and, from the all-in-one network's time, in minutes here; the
        checked level where the budget affords one fresh seed of the predicted groups, the
        all-in-one network and a sample of the tasks alone (``checked.py``)."""
        driver = self.taskset.grouping.measure if self.taskset.grouping.measure in ONE_RUN \
            else ONE_RUN[0]
        self.taskset = self.taskset.model_copy(update={"grouping": self.taskset.grouping
                                                       .model_copy(update={"measure": driver})})
        matrix = affinity[driver].matrix
        groupings = [predicted_entry(self.tasks, (f"{driver}/{self.taskset.grouping.rule}",
                                                  matrix, self.taskset.grouping.rule), k,
                                     self.measured) for k in self.taskset.budgets]
        counted = self.ledger.budget
        runs = math.ceil(need)
        minutes = need * self.ledger.unit_seconds / 60
        took = f"{minutes:.0f} minutes" if minutes >= 1 else "under a minute"
        cost = (f"measuring them (every task alone, the pairs that fit and a fresh seed) needs "
                f"budget.training_runs: {runs}, about {took} here (the all-in-one network "
                f"took {_seconds(self.ledger.unit_seconds)})")
        self.meta["next_level"] = NextLevel(training_runs=runs, minutes=round(minutes, 1))
        short = (f"budget: the network is too dear for the default budget ({counted:.2g} "
                 "training runs of counted compute)"
                 if self.taskset.budget.training_runs is None else
                 f"budget.training_runs: {counted:g} is short of the measured level")
        checked = self.check(groupings)
        if checked is not None:
            entries, seed, sample = checked
            alone = "every task alone" if len(sample) == len(self.tasks) else \
                f"{len(sample)} of {len(self.tasks)} tasks alone, a sample"
            self.warnings.append(
                f"{short}: the groupings are predicted from the all-in-one run and checked "
                f"on one fresh seed against both baselines ({alone}; the seed-to-seed spread "
                "pooled from the all-in-one network's two seeds); " + cost)
            verification = Verification(seeds=[seed], confirmation_seeds=[seed])
            return self.result(affinity, diagnostics, entries, verification,
                               f"{verdict(entries)} (predicted from one run, checked on one "
                               f"fresh seed; {alone})")
        self.ledger.budget = max(counted, self.ledger.spent)  # at least the one run
        self.warnings.append(f"{short}: the groupings are predicted from its all-in-one run "
                             "alone; " + cost)
        best = max(groupings, key=lambda e: sum((e.predicted_gain or {}).values()))
        return self.result(affinity, diagnostics, groupings, None,
                           f"predicted from one run, not measured: k = {best.k} groups "
                           f"({groups_text(best)}) by {driver}; " + cost)

    def check(self, predicted: list[GroupingEntry]
              ) -> tuple[list[GroupingEntry], int, list[int]] | None:
        """The checked level, where the budget affords it: on one fresh seed, the sampled
        tasks alone, then the all-in-one network and every k's predicted groups; each k's
        entry against the better baseline (``checked.check_entry``), the seed and the
        sample. None where it does not fit."""
        n, tasks, ledger = self.data.n_tasks, self.tasks, self.ledger
        plans = [Grouping(e.k, tuple(tuple(tasks.index(t) for t in g) for g in e.groups),
                          tuple(e.served_by[t] for t in tasks)) for e in predicted]
        seed = self.seed + CONFIRMATION_FIRST_SEED
        check = plan_check(plans, n, seed, ledger.remaining, ledger.estimate)
        if check is None:
            return None
        singles = [(t,) for t in check.sample]
        rest = [g for g in check.networks if g not in singles]
        self.progress.total = ledger.spent + ledger.estimate(check.networks)
        self.train(singles, seed, f"check: {len(singles)} tasks alone (fresh seed)")
        # planned again from the singles' epochs
        self.progress.total = ledger.spent + ledger.estimate(rest)
        self.train(rest, seed, f"check: the all-in-one network and {len(rest) - 1} groups "
                   "(fresh seed)")
        spread = pooled_spread(self.measured, ledger.everyone, [self.seed, seed])
        return [check_entry(tasks, e, g, self.measured, seed, check.sample, spread, n)
                for e, g in zip(predicted, plans, strict=True)], seed, check.sample

    def exhaustive(self, seeds: list[int]) -> bool:
        """Whether every subset of the tasks was trained on each of ``seeds``."""
        n = self.data.n_tasks
        return all(self.measured.has(g, s) for g in all_subsets(n) for s in seeds)

    def tick(self, networks: int = 1) -> None:
        self.ledger.tick(networks)
        self.progress.step(networks)
        self.progress.update(self.ledger.live())

    def train(self, groups: Sequence[Group], seed: int, stage: str) -> SubsetProbe:
        """Train one network per group on ``seed`` by the recipe, each to its own stopping
        point (``budget.max_seconds`` aside), and record its cost and losses."""
        self.progress.enter(stage, self.ledger.planned_steps(groups))
        started = time.perf_counter()
        groups = list(groups)
        probe = self.executor.subsets(self.taskset, self.data, groups, seed, self.device,
                                      tick=self.tick, deadline=self.ledger.deadline())
        self._record(stage, seed, groups, probe.epochs.tolist(), probe.member_steps.tolist(),
                     started, probe.val_loss, probe.cut)
        return probe

    def joint(self, seed: int, label: str) -> JointProbe:
        self.progress.enter(f"all-in-one network and affinity samples {label}",
                            self.ledger.planned_steps([self.ledger.everyone])
                            if self.ledger.unit_steps else ())
        started = time.perf_counter()
        joint = self.executor.joint(self.taskset, self.data, seed, self.device, tick=self.tick)
        if not self.ledger.unit_steps:
            self.ledger.set_unit(joint.steps, joint.epochs, joint.unit_seconds)
            self.progress.unit_steps = self.ledger.unit_steps
            counted_default(self.taskset, self.ledger, self.policy)
            self.progress.total = self.ledger.budget
        self._record("all-in-one network", seed, [self.ledger.everyone], [joint.epochs],
                     [joint.steps], started, joint.val_loss[None])
        return joint

    def _record(self, stage: str, seed: int, groups: list[Group], epochs: list[int],
                steps: list[int], started: float, val_loss: np.ndarray, cut: int = 0) -> None:
        """A finished stage: its cost in the ledger and the progress, its losses measured."""
        self.ledger.add(stage, seed, groups, epochs, steps, time.perf_counter() - started, cut)
        self.progress.update(self.ledger.live())
        self.measured.add(seed, groups, val_loss)


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s >= 10 else f"{s:.2g} s"


def evidence(wanted: list[Group], ledger: Ledger, room: float,
             joint: JointProbe) -> list[Group]:
    """The pairs and sampled larger groups to train beside the single-task networks: all of
    them when they fit in ``room`` training runs; else the pairs the joint run's affinities
    rank highest (mean rank of gradient cosine and lookahead, both directions), as many as
    fit, and no larger group."""
    if ledger.estimate(wanted) <= room:
        return wanted
    pairs = [g for g in wanted if len(g) == 2]
    sym = [joint.grad_cosine + joint.grad_cosine.T, joint.lookahead + joint.lookahead.T]
    ranks = [rankdata([-m[g] for g in pairs]) for m in sym]
    order = np.argsort(np.mean(ranks, axis=0), kind="stable") if pairs else np.zeros(0, int)
    chosen: list[Group] = []
    for i in order.tolist():
        if ledger.estimate([*chosen, pairs[i]]) > room:
            break
        chosen.append(pairs[i])
    return chosen


def _driver_with_evidence(taskset: TaskSet, members: list[Group],
                          warnings: list[str]) -> TaskSet:
    """The task set, its driving measure the next default one when it would be ``pairwise``
    by default but the budget trained no pair (its matrix would hold no measurement); the
    ``warnings`` say so."""
    if taskset.grouping.measure is not None or taskset.driver != "pairwise" \
            or any(len(g) == 2 for g in members):
        return taskset
    others = [m for m in DEFAULT_DRIVERS if m in taskset.measures and m != "pairwise"]
    if not others:
        return taskset
    warnings.append(
        f"grouping.measure: the budget trained no pair, so pairwise gains hold no measurement; "
        f"{others[0]} drives the candidates and the auxiliary ranking instead")
    return taskset.model_copy(update={"grouping": taskset.grouping.model_copy(
        update={"measure": others[0]})})


def _check_tasks(taskset: TaskSet, data: Dataset) -> None:
    """The data given from Python holds the task set's tasks, in its order."""
    if [t.name for t in data.tasks] != taskset.task_names:
        raise InvalidTaskSet(f"data: its tasks {[t.name for t in data.tasks]} are not the task "
                             f"set's {taskset.task_names}")


def _fitted_surrogate(affinity: dict[str, MeasureResult], measured: Measurements,
                      members: list[Group], seeds: list[int]) -> Surrogate | None:
    """The surrogate of group gains fitted to the pair gains and the trained groups of 3+."""
    if "pairwise" not in affinity:
        return None
    big = [g for g in members if len(g) >= 3]
    if not big:
        return None
    n = len(affinity["pairwise"].matrix)
    single = np.diagonal(measured.mean([(t,) for t in range(n)], seeds))
    loss = measured.mean(big, seeds)
    return fit_surrogate(affinity["pairwise"].matrix, big, (single - loss) / single)


def _by_size(group: Group) -> tuple[int, Group]:
    return len(group), group
