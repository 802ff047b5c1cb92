"""``analyze``: a task set in, a Result with its affinity matrices, raced groupings, auxiliary
choices and verdict out.

1. Probes, per probe seed: the all-in-one network (the joint probe, which samples gradient
   and lookahead affinities along its run) and one stacked model of every single-task
   network, every pair (when ``pairwise`` is asked for) and a few sampled larger groups
   (to fit the per-task surrogate of group gains). All train by the task set's recipe.
2. Measures from the probes; candidates from every predictor.
3. The race (``race.py``) spends what the budget has left over new seeds; the groupings,
   auxiliary choices and verdict come from its seed-paired measurements.
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
from affinity.grouping.surrogate import Surrogate, fit_surrogate
from affinity.measures import MEASURES, ProbeRun
from affinity.models import HeadFactory, LossFn, check_backbone, own_heads, resolve_device
from affinity.plan import Ledger
from affinity.probes.joint import JointProbe, run_joint
from affinity.probes.subsets import SubsetProbe, run_subsets
from affinity.progress import Progress, ProgressCallback
from affinity.race import Affords, Group, Measurements, least_round, run_race
from affinity.recommend import (
    Source,
    auxiliary_choice,
    auxiliary_contest,
    clusterings,
    family_prior,
    grouping_contest,
    grouping_entry,
    predicted_entry,
    predictors,
    ranked_auxiliaries,
    verdict,
)
from affinity.result import MeasureResult, Result
from affinity.taskset import InvalidTaskSet, TaskSet

MAX_RACE_SEEDS = 8
PROBE_SHARE = 0.75  # of what is left after the all-in-one network, for the subset probes
CALIBRATION_STEPS = 24  # steps of a probe stack timed before the probes train
CALIBRATION_WARMUP = 4  # of them, left out (the first steps allocate; with 8 steps and 2 left
# out, the timing of a small network on 2 CPU cores varied 1.5 to 3.8 ms a step, and at 3.8
# the probes of digits-own-rows dropped their larger groups)
CALIBRATION_NETWORKS = 8  # networks in that stack (the cost model extrapolates to more)
SECOND_SEED_MARGIN = 1.25  # a larger budget also widens the first round: on a 4-task set
# where one training took 60 ms, the spend so far plus the least second round was 12 runs,
# and 13 gave a second seed with a network cut short, 15 one in full
SAMPLE_SEED = 20_240_601  # the sampled larger groups do not depend on the probes' seeds


def probe_members(needs: set[str], n_tasks: int, sampled: int = 0) -> list[Group]:
    """Single-task networks (the baseline), pairs when a measure needs them, and ``sampled``
    random groups of 3 to T - 1 tasks."""
    members: list[Group] = [(t,) for t in range(n_tasks)]
    if "pairs" in needs:
        members += list(itertools.combinations(range(n_tasks), 2))
    rng = np.random.default_rng(SAMPLE_SEED)
    tries = 0
    while sampled and n_tasks >= 4 and tries < 100 * sampled:
        tries += 1
        size = int(rng.integers(3, n_tasks))
        group = tuple(sorted(rng.choice(n_tasks, size, replace=False).tolist()))
        if group not in members:
            members.append(group)
            sampled -= 1
    return members


def affordable(members: list[Group], n_tasks: int, most: int, joint: JointProbe) -> list[Group]:
    """The probe members to train when no more than ``most`` fit: every single-task network
    (the baselines), then the pairs the joint run's affinities rank highest (mean rank of
    gradient cosine and lookahead, both directions); sampled larger groups go first."""
    if len(members) <= most:
        return members
    singles = members[:n_tasks]
    pairs = [g for g in members[n_tasks:] if len(g) == 2]
    sym = [joint.grad_cosine + joint.grad_cosine.T, joint.lookahead + joint.lookahead.T]
    ranks = [rankdata([-m[g] for g in pairs]) for m in sym]
    order = np.argsort(np.mean(ranks, axis=0), kind="stable")
    return singles + [pairs[i] for i in order[:max(0, most - n_tasks)]]


def network_weights(data: Dataset) -> Callable[[Sequence[Group]], list[float]]:
    """Each group's network weight: the share of the all-in-one network's training rows
    (those labelled for any task) that it trains on (``plan.py``)."""
    labelled = data.labelled(data.y_train)
    everyone = max(int(labelled.any(1).sum()), 1)
    known: dict[Group, float] = {}  # the race asks for the same groups many times

    def weigh(groups: Sequence[Group]) -> list[float]:
        for g in groups:
            if g not in known:
                known[g] = int(labelled[:, list(g)].any(1).sum()) / everyone
        return [known[g] for g in groups]
    return weigh


def _step_seconds(taskset: TaskSet, data: Dataset, members: list[Group],
                  device: torch.device) -> float:
    """Median wall time of one step of the stacked members (warm-up steps left out)."""
    marks: list[float] = []

    def mark(_n: int) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        marks.append(time.perf_counter())

    run_subsets(taskset, data, members, 0, device, tick=mark, keep_params=False,
                max_steps=CALIBRATION_STEPS)
    timed = marks[CALIBRATION_WARMUP:]
    return float(np.median(np.diff(timed))) if len(timed) > 1 else 0.0


def analyze(taskset: TaskSet, *, base_dir: str | Path | None = None,
            device: str | torch.device = "auto",
            data: Dataset | None = None, progress: ProgressCallback | None = None,
            executor: Executor | None = None,
            trunk: Callable[..., torch.nn.Module] | None = None,
            heads: Mapping[str, HeadFactory] | None = None,
            losses: Mapping[str, LossFn] | None = None) -> Result:
    """Probe, measure, race and decide; see the module docstring.

    ``data``: the data instead of the task set's ``data`` (``affinity.tensors``).
    ``executor`` trains the stacked networks (default: ``LocalExecutor``, in this process).
    ``trunk``: your own shared network, a factory ``(input_shape) -> nn.Module`` mapping a
    batch (N, *input_shape) to features (N, width) (its options: ``functools.partial``); it
    replaces the task set's ``model``. ``heads``: per task, a factory ``(width) -> nn.Module``
    mapping features (N, width) to outputs (N, *shape); ``losses``: per task, ``(outputs,
    targets) -> losses`` per row or per element (``reduction="none"``). Others keep a linear
    head and their type's loss. Python code runs in this process only: with the local
    executor, not on Ray workers or the service."""
    started = time.perf_counter()
    own_code = {k for k, v in (("trunk", trunk), ("heads", heads), ("losses", losses)) if v}
    if own_code and executor is not None and not isinstance(executor, LocalExecutor):
        raise ValueError(f"{', '.join(sorted(own_code))}: Python code runs in this process "
                         "only; use the local executor, or install a backbone package")
    if trunk is not None:
        name = register_backbone(f"python:{getattr(trunk, '__qualname__', 'trunk')}", trunk)
        taskset = taskset.model_copy(update={"model": taskset.model.model_copy(
            update={"backbone": name, "hidden": None, "options": {}})})
    import torch._dynamo  # noqa: F401  # the first optimizer imports it (about 1 s): not a training cost
    executor = executor or LocalExecutor()
    dev = resolve_device(device)
    data = (data or load_dataset(taskset, base_dir)).to(dev)
    width = check_backbone(taskset.model, data.input_shape)
    if heads or losses:
        data = own_heads(taskset.model, data, heads or {}, losses or {}, width)
    _check_tasks(taskset, data)
    n = data.n_tasks
    ledger = Ledger(taskset.training_runs)  # its clock starts after the import above
    weigh = network_weights(data)
    prog = Progress(ledger.budget, progress)
    measures = [MEASURES[name] for name in taskset.measures]
    needs = set().union(*(m.needs for m in measures))
    sampled = n // 2 if taskset.verify and "pairs" in needs else 0
    members = probe_members(needs, n, sampled)
    measured = Measurements()
    everyone = tuple(range(n))
    per_seed: dict[str, list[np.ndarray]] = {m.name: [] for m in measures}
    conflicts: list[np.ndarray] = []

    def tick(*_: int) -> None:
        prog.update(ledger.live())

    def train(groups: list[Group], seed: int, stage: str, share: float = 1.0,
              then: Sequence[Group] = ()) -> SubsetProbe:
        """Train a stage of networks; it stops at ``share`` of what the budget has left, less
        what the networks of ``then`` are estimated to cost (after the epoch under way),
        keeping each network's best epoch so far."""
        prog.enter(stage)
        left = share * ledger.remaining - ledger.estimate(weigh(then))
        deadline = time.time() + max(0.0, left) * ledger.unit_seconds
        with ledger.stage(stage, len(groups), seed) as record:
            probe = executor.subsets(taskset, data, groups, seed, dev, tick=tick,
                                     deadline=deadline)
            record["steps"], record["network_steps"] = probe.steps, probe.network_steps
            record["_weights"] = weigh(groups)
            record["_member_steps"] = probe.member_steps.tolist()
            if probe.cut:
                record["cut"] = probe.cut
        measured.add(seed, groups, probe.val_loss)
        return probe

    probe_seeds = taskset.probe.seeds or 1
    for seed in range(probe_seeds):
        label = f"(seed {seed + 1}/{probe_seeds})"
        prog.enter(f"all-in-one network and affinity samples {label}")
        with ledger.stage("all-in-one network", 1, seed) as record:
            joint = run_joint(taskset, data, seed, dev, tick=tick)
            record["steps"] = record["network_steps"] = joint.steps
        if seed == 0:
            ledger.set_unit(joint.unit_seconds, joint.steps)
        measured.add(seed, [everyone], joint.val_loss[None])
        conflicts.append(joint.conflict_rate)
        if seed == 0 and len(members) > n:
            timed = members[:CALIBRATION_NETWORKS]
            with ledger.stage("calibration", len(timed), seed):
                step = _step_seconds(taskset, data, timed, dev)
            ledger.calibrate(len(timed), step)
            most = ledger.most_networks(PROBE_SHARE, weigh(members))
            members = affordable(members, n, most, joint)
        subsets = train(members, seed, f"{len(members)} subset networks {label}",
                        PROBE_SHARE / (probe_seeds - seed))
        run = ProbeRun(taskset, data, seed, joint, subsets)
        for m in measures:
            prog.enter(f"measure {m.name} {label}")  # also the service's heartbeat
            per_seed[m.name].append(np.asarray(m.compute(run), dtype=float))
    result = Result(
        tasks=taskset.task_names,
        affinity={k: MeasureResult.from_seeds(v) for k, v in per_seed.items()},
        diagnostics={"conflict_rate": MeasureResult.from_seeds(conflicts)},
        meta={"name": taskset.name, "device": str(dev), "probe_seeds": probe_seeds,
              "n_train": len(data.x_train), "n_val": len(data.x_val),
              "taskset": taskset.model_dump(mode="json"), "torch": torch.__version__,
              "warnings": list(data.warnings)},
    )
    prog.enter("clusterings and candidates")
    surrogate = _fitted_surrogate(result, measured, members, probe_seeds)
    sources = predictors(result, taskset, surrogate)
    result.clusterings = clusterings(result, taskset)
    result.auxiliary = ranked_auxiliaries(result, taskset)
    result.meta.update(driving_measure=taskset.driver, predictors=[s[0] for s in sources])
    if surrogate:
        result.meta["surrogate_slopes"] = dict(zip(result.tasks, surrogate.slopes.round(6).tolist(),
                                                   strict=True))
    if "pairs" in needs:
        untrained = [[result.tasks[i], result.tasks[j]]
                     for i, j in itertools.combinations(range(n), 2) if (i, j) not in members]
        if untrained:  # the budget could not train every pair (see ``affordable``)
            result.meta["untrained_pairs"] = untrained
    if taskset.verify:
        _race(result, taskset, sources, measured, probe_seeds, train,
              lambda groups, share, then: ledger.affords(weigh(groups), share, weigh(then)),
              lambda groups: ledger.budget - ledger.remaining + ledger.estimate(weigh(groups)),
              prog.enter)
    else:
        result.groupings = [predicted_entry(result.tasks, sources[0], k)
                            for k in taskset.budgets]
        result.verdict = verdict(result.groupings)
    cut = [f"{s['stage']}: {s['cut']}" for s in ledger.stages if s.get("cut")]
    if cut:
        result.meta["warnings"].append(
            "budget.training_runs: the budget ran out while networks were still training ("
            + "; ".join(cut) + " networks); they were scored at their best epoch so far, "
            "short of convergence. Raise budget.training_runs to train them out")
    seconds = time.perf_counter() - started
    result.meta["cost"] = {**ledger.cost(), "wall_run_equivalents": round(
        seconds / max(ledger.unit_seconds, 1e-9), 3)}
    result.meta["seconds"] = round(seconds, 3)
    prog.finish()
    return result


def _check_tasks(taskset: TaskSet, data: Dataset) -> None:
    """The data given from Python holds the task set's tasks, in its order."""
    if [t.name for t in data.tasks] != taskset.task_names:
        raise InvalidTaskSet(f"data: its tasks {[t.name for t in data.tasks]} are not the task "
                             f"set's {taskset.task_names}")


def _fitted_surrogate(result: Result, measured: Measurements, members: list[Group],
                      seeds: int) -> Surrogate | None:
    """The surrogate of group gains fitted to the pair gains and the trained groups of 3+."""
    if "pairwise" not in result.affinity:
        return None
    big = [g for g in members if len(g) >= 3]
    if not big:
        return None
    single = np.array([np.mean([measured.loss[(t,), s][t] for s in range(seeds)])
                       for t in range(len(result.tasks))])
    loss = np.array([np.mean([measured.loss[g, s] for s in range(seeds)], axis=0) for g in big])
    return fit_surrogate(result.affinity["pairwise"].matrix, big, (single - loss) / single)


def _race(result: Result, taskset: TaskSet, sources: list[Source], measured: Measurements,
          probe_seeds: int, train: Callable[..., SubsetProbe],
          affords: Affords, wanted: Callable[[list[Group]], float],
          progress: Callable[[str], None]) -> None:
    """Race the candidates over new seeds while the budget lasts; fill the decisions.
    ``wanted(groups)``: the budget that would have afforded a round of these networks too."""
    n, tasks = len(result.tasks), result.tasks
    grouping = {}
    for k in taskset.budgets:
        progress(f"candidate groupings for k={k}")
        grouping[k] = grouping_contest(sources, n, k, taskset.grouping.candidates)
    primaries = taskset.auxiliary.primary or tasks
    aux = {p: auxiliary_contest(sources, tasks.index(p), list(grouping.values()),
                                taskset.auxiliary.max_aux) for p in primaries}
    seeds = list(range(max(MAX_RACE_SEEDS, probe_seeds)))
    used = run_race([*grouping.values(), *aux.values()], measured, seeds,
                    lambda groups, seed, then: train(groups, seed, f"race: {len(groups)} "
                                                                   f"networks (seed {seed + 1})",
                                                     then=then),
                    affords)
    if len(used) == 1 and len(seeds) > 1:
        need = SECOND_SEED_MARGIN * wanted(sorted(least_round([*grouping.values(),
                                                               *aux.values()])))
        result.meta["warnings"].append(
            "budget.training_runs: the race measured the probes' seed only, so no comparison "
            f"has an interval; about {math.ceil(need)} training runs would afford a second "
            "seed")
    prior = family_prior(list(grouping.values()), measured, used)
    result.groupings = [grouping_entry(tasks, grouping[k], measured, used, k, prior)
                        for k in taskset.budgets]
    result.verdict = verdict(result.groupings)
    prior = family_prior(list(aux.values()), measured, used)
    choices = {p: auxiliary_choice(tasks, aux[p], measured, used, prior) for p in primaries}
    for p, ranked in result.auxiliary.items():
        for entry in ranked:
            entry["selected"] = entry["task"] in choices[p]["auxiliaries"]
    result.verification = {"seeds": used, "auxiliary": choices}
