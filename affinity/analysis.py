"""``analyze``: a task set in, a Result with its affinity matrices, raced groupings, auxiliary
choices and verdict out.

0. The plan (``plan.py``): the budget is counted in work, never in seconds. Before anything
   trains, a budget that cannot afford two seeds of the baselines and the finalists is
   refused (or, by ``budget.when_short``, only the baselines are compared).
1. Probes, per probe seed: the all-in-one network (the joint probe, which samples gradient
   and lookahead affinities along its run), every single-task network, then the pairs
   (when ``pairwise`` is asked for) and a few sampled larger groups (to fit the per-task
   surrogate of group gains), as many as fit beside the confirmation seeds. Every network
   trains by the task set's recipe to its own stopping point: the planner trims the
   evidence, never the training.
2. Measures from the probes; candidates from every predictor.
3. Selection: the race (``race.py``) halves the candidates over seeds, the probes' first,
   while the budget less the confirmation seeds' share lasts.
4. Confirmation: each k's finalist, each primary's best auxiliary set and the baselines on
   fresh seeds that chose nothing; every reported improvement and interval comes from them.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from scipy.stats import rankdata

from affinity.backbones import register as register_backbone
from affinity.data import Dataset, load_dataset
from affinity.executor import Executor, LocalExecutor
from affinity.flops import step_flops
from affinity.grouping.select import all_subsets
from affinity.grouping.surrogate import Surrogate, fit_surrogate
from affinity.measures import MEASURES, ProbeRun
from affinity.models import HeadFactory, LossFn, check_backbone, own_heads, resolve_device
from affinity.plan import (
    CONFIRMATION_MARGIN,
    EVIDENCE_SHARE,
    Ledger,
    check_budget,
    counted_default,
    finalist_allowance,
    least_budget,
    raise_default_budget,
    reserve,
)
from affinity.probes.joint import JointProbe
from affinity.probes.subsets import SubsetProbe, merge_probes
from affinity.progress import Progress, ProgressCallback
from affinity.race import Candidate, Contest, Group, Measurements, run_race, to_confirm
from affinity.recommend import (
    Source,
    auxiliary_choice,
    auxiliary_contest,
    baselines,
    better_baseline,
    clusterings,
    finalist,
    grouping_contest,
    grouping_entry,
    measured_optimum,
    predicted_entry,
    predictors,
    ranked_auxiliaries,
    verdict,
)
from affinity.result import MeasureResult, Result
from affinity.taskset import DEFAULT_DRIVERS, InvalidTaskSet, TaskSet

MAX_RACE_SEEDS = 8
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
            losses: Mapping[str, LossFn] | None = None) -> Result:
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
    executor, not on Ray workers or the service."""
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
    n = data.n_tasks
    ledger = Ledger(taskset.training_runs, taskset.training.batch_size, network_rows(data),
                    tuple(range(n)), taskset.budget.max_seconds,
                    step_flops=step_flops(taskset, data))
    need = least_budget(ledger, n, finalist_allowance(taskset))
    raise_default_budget(taskset, ledger, need)
    full = check_budget(taskset, ledger, need)
    run = _Run(taskset, data, dev, executor or LocalExecutor(), ledger,
               Progress(ledger.budget, progress))
    result, members = run.probes(full)
    taskset = _driver_with_evidence(taskset, members, result)
    run.progress.enter("clusterings and candidates")
    surrogate = _fitted_surrogate(result, run.measured, members, run.probe_seed_list)
    sources = predictors(result, taskset, surrogate)
    result.clusterings = clusterings(result, taskset)
    result.auxiliary = ranked_auxiliaries(result, taskset)
    result.meta.update(driving_measure=taskset.driver, predictors=[s[0] for s in sources])
    if surrogate:
        result.meta["surrogate_slopes"] = dict(zip(result.tasks, surrogate.slopes.round(6).tolist(),
                                                   strict=True))
    if not full:
        result.meta["warnings"].append(
            f"budget.training_runs: {ledger.budget:g} cannot afford two seeds of the baselines "
            f"and the finalists (at least {math.ceil(need)} would): only the two baselines "
            "were trained and compared (budget.when_short: baselines)")
    if taskset.verify:
        _race(result, taskset, sources if full else [], run)
    else:
        result.groupings = [predicted_entry(result.tasks, sources[0], k)
                            for k in taskset.budgets]
        result.verdict = verdict(result.groupings)
    cut = [f"{s['stage']}: {s['cut']}" for s in ledger.stages if s.get("cut")]
    if cut:
        result.meta["warnings"].append(
            "budget.max_seconds: the time ran out while networks were still training ("
            + "; ".join(cut) + " networks); they were scored at their best epoch so far, "
            "short of convergence. Raise budget.max_seconds to train them out")
    result.meta["cost"] = ledger.cost()
    result.meta["seconds"] = result.meta["cost"]["seconds"]
    run.progress.finish()
    return result


class _Run:
    """The stages of one analysis: what they share (data, device, ledger, measurements)."""

    def __init__(self, taskset: TaskSet, data: Dataset, device: torch.device,
                 executor: Executor, ledger: Ledger, progress: Progress) -> None:
        self.taskset, self.data, self.device, self.executor = taskset, data, device, executor
        self.ledger, self.progress = ledger, progress
        self.measured = Measurements()
        self.probe_seeds = taskset.probe.seeds or 1
        self.seed = taskset.seed
        """The base of every seed: probes ``seed``, ``seed + 1``, ..., the race's from
        ``seed``, the fresh ones from ``seed + CONFIRMATION_FIRST_SEED``."""
        self.probe_seed_list = [self.seed + i for i in range(self.probe_seeds)]
        self.reserve = 0.0
        """Training runs kept for the confirmation seeds (set once the first seed's
        baselines are known)."""

    def exhaustive(self, seeds: list[int]) -> bool:
        """Whether every subset of the tasks was trained on each of ``seeds``."""
        n = self.data.n_tasks
        return all(self.measured.has(g, s) for g in all_subsets(n) for s in seeds)

    def tick(self, networks: int = 1) -> None:
        self.ledger.tick(networks)
        self.progress.update(self.ledger.live())

    def train(self, groups: Sequence[Group], seed: int, stage: str) -> SubsetProbe:
        """Train one network per group on ``seed`` by the recipe, each to its own stopping
        point (``budget.max_seconds`` aside), and record its cost and losses."""
        self.progress.enter(stage)
        started = time.perf_counter()
        groups = list(groups)
        probe = self.executor.subsets(self.taskset, self.data, groups, seed, self.device,
                                      tick=self.tick, deadline=self.ledger.deadline())
        self._record(stage, seed, groups, probe.epochs.tolist(), probe.member_steps.tolist(),
                     started, probe.val_loss, probe.cut)
        return probe

    def joint(self, seed: int, label: str) -> JointProbe:
        self.progress.enter(f"all-in-one network and affinity samples {label}")
        started = time.perf_counter()
        joint = self.executor.joint(self.taskset, self.data, seed, self.device, tick=self.tick)
        if not self.ledger.unit_steps:
            self.ledger.set_unit(joint.steps, joint.epochs, joint.unit_seconds)
            counted_default(self.taskset, self.ledger)
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

    def probes(self, full: bool) -> tuple[Result, list[Group]]:
        """Per probe seed: the all-in-one network, the single-task networks, then the pairs
        and sampled larger groups that fit beside the confirmation seeds (all of them only
        when ``full``); the measures from them."""
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
            parts = [self.train(singles, seed, f"{n} single-task networks {label}")]
            if i == 0:
                self.reserve = reserve(
                    ledger, better_baseline(baselines(n), self.measured, [seed]).groups,
                    finalist_allowance(taskset), self.probe_seeds, n)
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
                                     evidence(wanted[n:], ledger, EVIDENCE_SHARE * room, joint))
            if len(members) > n:
                parts.append(self.train(members[n:], seed,
                                        f"{len(members) - n} evidence networks {label}"))
            subsets = merge_probes(parts, self.device)
            run = ProbeRun(taskset, data, seed, joint, subsets)
            for m in measures:
                self.progress.enter(f"measure {m.name} {label}")  # also the service's heartbeat
                per_seed[m.name].append(np.asarray(m.compute(run), dtype=float))
        result = Result(
            tasks=taskset.task_names,
            affinity={k: MeasureResult.from_seeds(v) for k, v in per_seed.items()},
            diagnostics={"conflict_rate": MeasureResult.from_seeds(conflicts)},
            meta={"name": taskset.name, "device": str(self.device),
                  "probe_seeds": self.probe_seeds, "n_train": len(data.x_train),
                  "n_val": len(data.x_val), "taskset": taskset.model_dump(mode="json"),
                  "torch": torch.__version__, "warnings": list(data.warnings)})
        if "pairs" in needs:
            untrained = [[result.tasks[i], result.tasks[j]]
                         for i, j in itertools.combinations(range(n), 2)
                         if (i, j) not in members]
            if untrained:  # the budget could not train every pair (see ``evidence``)
                result.meta["untrained_pairs"] = untrained
                missing = [tuple(result.tasks.index(t) for t in p) for p in untrained]
                more = math.ceil(ledger.budget + ledger.estimate(missing) / EVIDENCE_SHARE)
                result.meta["warnings"].append(
                    f"pairwise: {len(untrained)} of {n * (n - 1) // 2} pairs were not trained "
                    "(the budget did not reach them); their cells hold the mean of their "
                    "target's trained pairs, not a measurement, and the auxiliary ranking "
                    f"reads them so; budget.training_runs: {more} would train every pair")
        return result, members


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


def _driver_with_evidence(taskset: TaskSet, members: list[Group], result: Result) -> TaskSet:
    """The task set, its driving measure the next default one when it would be ``pairwise``
    by default but the budget trained no pair (its matrix would hold no measurement); the
    result's warnings say so."""
    if taskset.grouping.measure is not None or taskset.driver != "pairwise" \
            or any(len(g) == 2 for g in members):
        return taskset
    others = [m for m in DEFAULT_DRIVERS if m in taskset.measures and m != "pairwise"]
    if not others:
        return taskset
    result.meta["warnings"].append(
        f"grouping.measure: the budget trained no pair, so pairwise gains hold no measurement; "
        f"{others[0]} drives the candidates and the auxiliary ranking instead")
    return taskset.model_copy(update={"grouping": taskset.grouping.model_copy(
        update={"measure": others[0]})})


def _check_tasks(taskset: TaskSet, data: Dataset) -> None:
    """The data given from Python holds the task set's tasks, in its order."""
    if [t.name for t in data.tasks] != taskset.task_names:
        raise InvalidTaskSet(f"data: its tasks {[t.name for t in data.tasks]} are not the task "
                             f"set's {taskset.task_names}")


def _fitted_surrogate(result: Result, measured: Measurements, members: list[Group],
                      seeds: list[int]) -> Surrogate | None:
    """The surrogate of group gains fitted to the pair gains and the trained groups of 3+."""
    if "pairwise" not in result.affinity:
        return None
    big = [g for g in members if len(g) >= 3]
    if not big:
        return None
    single = np.array([np.mean([measured.loss[(t,), s][t] for s in seeds])
                       for t in range(len(result.tasks))])
    loss = np.array([np.mean([measured.loss[g, s] for s in seeds], axis=0) for g in big])
    return fit_surrogate(result.affinity["pairwise"].matrix, big, (single - loss) / single)


def _race(result: Result, taskset: TaskSet, sources: list[Source], run: _Run) -> None:
    """Select finalists by racing the candidates over seeds while the budget, less the
    confirmation seeds' share, lasts; confirm them on fresh seeds; fill the decisions.
    Without ``sources`` only the baselines are compared."""
    n, tasks, ledger, measured = len(result.tasks), result.tasks, run.ledger, run.measured
    grouping: dict[int, Contest] = {}
    probe_seeds = run.probe_seed_list
    exhaustive = bool(sources) and run.exhaustive(probe_seeds)
    for k in taskset.budgets:
        run.progress.enter(f"candidate groupings for k={k}")
        grouping[k] = grouping_contest(sources, n, k, taskset.grouping.candidates) \
            if sources else Contest(f"k={k}", [], baselines(n))
        if exhaustive:  # every subset measured: the measured optimum races first
            grouping[k].enter(measured_optimum(measured, n, k, probe_seeds))
    primaries = taskset.auxiliary.primary or tasks
    aux = {p: auxiliary_contest(sources, tasks.index(p), list(grouping.values()),
                                taskset.auxiliary.max_aux) for p in primaries} if sources else {}
    def affords(groups: list[Group], share: float, then: list[Group]) -> bool:
        room = ledger.remaining - run.reserve
        cost = ledger.estimate(groups)
        return not ledger.out_of_time() and cost <= share * room + 1e-9 \
            and cost + ledger.estimate(then) <= room + 1e-9

    selection = probe_seeds
    if sources:
        seeds = [run.seed + i for i in range(max(MAX_RACE_SEEDS, run.probe_seeds))]
        selection = run_race([*grouping.values(), *aux.values()], measured, seeds,
                             lambda groups, seed, _then: run.train(
                                 groups, seed, f"race: {len(groups)} networks (seed {seed + 1})"),
                             affords)
    final = {k: finalist(c, measured, selection) for k, c in grouping.items()}
    allowance = finalist_allowance(taskset) * ledger.estimate([ledger.everyone])
    for k, contest in grouping.items():
        if final[k][0] is not None or not sources:
            continue
        # the budget raced no candidate for k: the best-ranked one (the leading predictors'
        # favourite first) whose networks fit in what is left, or in the finalists' allowance
        # the plan kept on the fresh seed, goes to it, chosen by prediction alone
        confirming = {g for best, base in final.values() if best for g in to_confirm(best, base)}
        for candidate in contest.entered:
            more = confirming | set(to_confirm(candidate, final[k][1]))
            if CONFIRMATION_MARGIN * ledger.estimate(sorted(more)) <= ledger.remaining + 1e-9 \
                    or ledger.estimate(sorted(more - confirming)) <= allowance + 1e-9:
                contest.candidates = [candidate]
                final[k] = (candidate, final[k][1])
                break
    aux_final = {p: finalist(c, measured, selection)[0] for p, c in aux.items()}
    required = [(best, base) for best, base in final.values() if best]
    paired = sorted(((c, aux[p].baselines[0]) for p, c in aux_final.items() if c),
                    key=lambda item: ledger.estimate(to_confirm(*item)))
    # the baselines against each other first: one more seed that measured both helps to pick
    # the better one, which every comparison is against
    bases = baselines(n)
    if final:
        better = next(iter(final.values()))[1]
        paired.insert(0, (next(b for b in bases if b.groups != better.groups), better))
    confirmation = confirm(run, required, paired)
    if not confirmation and required:
        need = ledger.spent + ledger.estimate(sorted({g for item in required
                                                      for g in to_confirm(*item)}))
        result.meta["warnings"].append(
            "budget.training_runs: no fresh seed fitted to confirm the finalists, so no "
            f"comparison has an interval; about {math.ceil(max(need, ledger.budget + 1))} "
            "training runs would afford one")
    result.groupings = [grouping_entry(tasks, grouping[k], measured, selection, confirmation,
                                       k) for k in taskset.budgets]
    result.verdict = verdict(result.groupings)
    choices = {p: auxiliary_choice(tasks, aux[p], measured, selection, confirmation)
               for p in aux}
    for p, ranked in result.auxiliary.items():
        for entry in ranked:
            entry["selected"] = entry["task"] in choices.get(p, {}).get("auxiliaries", [])
    result.verification = {"seeds": selection + confirmation, "selection_seeds": selection,
                           "confirmation_seeds": confirmation, "auxiliary": choices}


def confirm(run: _Run, required: list[tuple[Candidate, Candidate]],
            paired: list[tuple[Candidate, Candidate]]) -> list[int]:
    """The confirmation: each (finalist, better baseline) of ``required`` on a fresh seed
    that chose nothing, training only the networks in which the two differ
    (``race.to_confirm``: a task served by the same network on both sides adds nothing to
    the comparison); a second fresh seed for the comparisons with a network never trained
    before (a finalist chosen by prediction: with one seed it has no spread of its own to
    pool). Each item of ``paired`` (the other baseline against the better one, then each
    primary's best auxiliary set and the primary alone, cheapest first) joins the first
    fresh seed where it fits beside the planned seeds. A seed starts only where its
    planned cost fits in what is left. Returns the seeds trained."""
    ledger, measured = run.ledger, run.measured
    trained = {g for g, _ in measured.loss}
    first = sorted({g for item in required for g in to_confirm(*item)}, key=_by_size)
    again = sorted({g for item in required if not set(to_confirm(*item)) <= trained
                    for g in to_confirm(*item)}, key=_by_size)
    for item in paired:
        more = [g for g in to_confirm(*item) if g not in first]
        if ledger.affords([*first, *more, *again]):
            first += more
    used: list[int] = []
    for i, groups in enumerate([first, again]):
        seed = run.seed + CONFIRMATION_FIRST_SEED + i
        if not groups or ledger.out_of_time() or not ledger.affords(groups):
            break
        todo = [g for g in groups if not measured.has(g, seed)]
        if todo:
            run.train(todo, seed, f"confirmation: {len(todo)} networks (fresh seed {i + 1})")
        used.append(seed)
    return used


def _by_size(group: Group) -> tuple[int, Group]:
    return len(group), group
