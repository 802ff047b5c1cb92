"""The result's decisions once the race has run: each k's ``groupings`` entry and each
primary's auxiliary choice (a decision and a claim, ``decision.py``), an entry chosen by
prediction alone, the clusterings and auxiliary rankings of the driving measure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import numpy as np
from scipy import stats

from affinity.auxiliary import rank_auxiliaries
from affinity.candidates import Source, baselines
from affinity.decision import Expected, claim, decide, expected_gains
from affinity.grouping import CLUSTERING_METHODS, cluster_tasks, partition_quality
from affinity.grouping.select import top_groupings
from affinity.race import Candidate, Contest, Measurements
from affinity.result import MeasureResult
from affinity.result_models import (
    AuxiliaryChoice,
    Claim,
    Finalist,
    GroupingEntry,
    Kind,
    MeasuredSeeds,
    TaskMeasured,
)
from affinity.stats import Comparison
from affinity.taskset import TaskSet
from affinity.verdict import auxiliary_sentence

AUX_CONFIDENCE = 0.90  # two-sided; its lower end is the one-sided 95% bound


def _names(tasks: list[str], groups: tuple[tuple[int, ...], ...]) -> list[list[str]]:
    return [[tasks[t] for t in g] for g in groups]


def _claim(c: Comparison | None) -> dict[str, Any]:
    """``Claim``'s fields of a comparison (none: no baseline, no interval)."""
    if c is None:
        return Claim(baseline=None, improvement=None, interval=None, significant=False,
                     worse_beyond_noise=False).model_dump()
    return Claim(baseline=c.baseline, improvement=round(c.improvement, 6),  # type: ignore[arg-type]
                 interval=None if c.interval is None else [round(v, 6) for v in c.interval],
                 significant=c.significant,
                 worse_beyond_noise=c.interval is not None and c.interval[1] < 0).model_dump()


def unmeasured_pairs(tasks: list[str], groups: tuple[tuple[int, ...], ...],
                     measured: Measurements) -> list[list[str]]:
    """The pairs of tasks that share one of ``groups`` and were never trained as a pair."""
    trained = measured.trained()
    pairs = sorted({(a, b) for g in groups for i, a in enumerate(g) for b in g[i + 1:]})
    return [[tasks[a], tasks[b]] for a, b in pairs if (a, b) not in trained]


def better_baseline(candidates: list[Candidate], measured: Measurements,
                    seeds: list[int]) -> Candidate:
    """Of the baseline ``candidates``, the one of the least mean total loss over ``seeds``."""
    return min(candidates, key=lambda b: measured.scores(b, seeds).mean())


def finalist(contest: Contest, measured: Measurements,
             selection: list[int]) -> tuple[Candidate | None, Candidate]:
    """The candidate to confirm (of every one the contest measured on the ``selection``
    seeds, the one of the highest expected gain, shrunk for the winner's curse; None when
    none was measured) and the contest's better baseline over those seeds."""
    base = better_baseline(contest.baselines, measured,
                           measured.measured_on(contest.baselines, selection))
    raced = [e for e in expected_gains(measured, contest, base, selection, [])
             if e.option.kind == "groups"]
    return (decide(raced).option if raced else None), base


def grouping_entry(tasks: list[str], contest: Contest, measured: Measurements,
                   selection: list[int], confirmation: list[int], k: int) -> GroupingEntry:
    """The ``groupings`` entry for k: a decision and a claim.

    The decision (``groups``, ``kind``, ``expected_improvement``): of every candidate the
    race measured and both baselines, the one of the lowest expected total loss given all
    the evidence (``decision.expected_gains``: the selection seeds' estimates shrunk for the
    winner's curse, the fresh seeds' as they are). The claim (``baseline``,
    ``improvement``, ``interval``, ``significant``, ``worse_beyond_noise``): the best
    candidate (``best_groups``) against the better baseline on the ``confirmation`` seeds
    alone, which chose nothing. The better baseline is the one of the lower mean total loss
    on every seed that trained both whole; each task's serving group is chosen on the seeds
    that chose the candidate. The per-task losses are over the confirmation seeds that
    trained the serving networks, else the selection seeds (``measured_seeds``)."""
    seeds = [*selection, *confirmation]
    base = better_baseline(contest.baselines, measured,
                           measured.measured_on(contest.baselines, seeds))
    together, single = baselines(len(tasks))
    options = expected_gains(measured, contest, base, selection, confirmation)
    chosen = decide(options)
    groups = [e for e in options if e.option.kind == "groups"]
    best = decide(groups) if groups else None
    comp = claim(measured, best.option, base, confirmation, selection) if best else None
    # k = 1 and k = T: the only candidate may be the better baseline's own groups (nothing
    # to compare)
    as_baseline = next((c for c in contest.entered if best is None
                        and c.groups == base.groups), None)
    serve = measured.chosen_on(chosen.option, selection, confirmation)

    def on(c: Candidate) -> list[int]:
        return measured.serving_seeds(c, confirmation, serve) or \
            measured.serving_seeds(c, selection, serve)

    def per_task(c: Candidate) -> np.ndarray:
        return measured.task_losses(c, on(c), serve).mean(axis=0)

    mine, alone, joint = per_task(chosen.option), per_task(single), per_task(together)
    paired = [s for s in on(chosen.option) if s in on(single)]
    spread = _gain_halfwidths(measured.task_losses(single, paired, serve),
                              measured.task_losses(chosen.option, paired, serve)) \
        if paired else None
    served = measured.served(chosen.option, serve, on(chosen.option)).tolist()
    return GroupingEntry(
        k=k, groups=_names(tasks, chosen.option.groups), kind=cast(Kind, chosen.option.kind),
        evidence="measured",
        unmeasured_pairs=unmeasured_pairs(tasks, chosen.option.groups, measured),
        expected_improvement=round(chosen.gain, 6),
        **{**_claim(comp), "baseline": base.kind},
        best_groups=_names(tasks, best.option.groups) if best else
        _names(tasks, as_baseline.groups) if as_baseline else None,
        best_sources=best.option.sources if best else [],
        best_expected_improvement=round(best.gain, 6) if best else None,
        served_by=dict(zip(tasks, served, strict=True)),
        measured={t: TaskMeasured(
            loss=round(float(mine[j]), 6), single_loss=round(float(alone[j]), 6),
            all_in_one_loss=round(float(joint[j]), 6),
            gain=round(float((alone[j] - mine[j]) / max(alone[j], 1e-12)), 6),
            gain_halfwidth=None if spread is None else round(float(spread[j]), 6))
            for j, t in enumerate(tasks)},
        measured_total_loss=round(float(mine.sum()), 6),
        measured_seeds=MeasuredSeeds(groups=on(chosen.option), single_task=on(single),
                                     all_in_one=on(together)),
        selection_seeds=list(selection),
        confirmation_seeds=list(best.fresh_seeds) if best else [],
        selected_by=_selected_by(chosen, best, base, len(selection)),
        finalists=[Finalist(
            groups=_names(tasks, c.groups), sources=c.sources,
            measured_total_loss=round(float(measured.scores(c, selection).mean()), 6)
            if measured.measured_on([c], selection) == list(selection) else None)
            for c in contest.candidates])


def _selected_by(chosen: Expected, best: Expected | None, base: Candidate, n: int) -> str:
    """How the entry's decision was made, in one phrase."""
    what = "the lowest expected total loss"
    if best is None:
        return f"{what}: no candidate measured; the better baseline over {n} seed(s)"
    return (f"{what} of {chosen.option.kind.replace('_', '-')} training and the best k "
            f"groups (measured on {len(best.selection_seeds)} seed(s) that chose them, "
            f"shrunk, and {len(best.fresh_seeds)} fresh seed(s)) against "
            f"{base.kind.replace('_', '-')} training")


def _gain_halfwidths(alone: np.ndarray, mine: np.ndarray) -> np.ndarray | None:
    """Half-widths of 95% t-intervals of each task's gain over training alone, from the
    seed-paired losses (seeds, tasks); None with one seed."""
    if len(alone) < 2:
        return None
    diff = (alone - mine) / np.maximum(alone.mean(axis=0), 1e-12)
    return stats.t.ppf(0.975, len(diff) - 1) * diff.std(axis=0, ddof=1) / np.sqrt(len(diff))


def predicted_entry(tasks: list[str], source: Source, k: int,
                    measured: Measurements) -> GroupingEntry:
    """A ``groupings`` entry chosen by predicted gain alone (no race)."""
    name, matrix, rule = source
    sel = top_groupings(matrix, k, rule=rule)[0]
    groups = tuple(tuple(g) for g in sel.groups)
    return GroupingEntry(
        k=k, groups=_names(tasks, groups), kind="groups", evidence="predicted",
        unmeasured_pairs=unmeasured_pairs(tasks, groups, measured), **_claim(None),
        served_by={tasks[j]: sel.served_by[j] for j in range(len(tasks))},
        predicted_gain={tasks[j]: round(float(sel.task_gain[j]), 6) for j in range(len(tasks))},
        selected_by=f"predicted gain ({name}); not measured")


def auxiliary_choice(tasks: list[str], contest: Contest, measured: Measurements,
                     selection: list[int], confirmation: list[int]) -> AuxiliaryChoice:
    """A primary's auxiliary decision and claim: of every auxiliary set the race measured
    for it and the primary alone, the one of the lowest expected loss of the primary given
    all the evidence (``auxiliaries``, empty for alone); the best set (``best_measured``)
    against the primary alone on the fresh seeds that trained both (``improvement``,
    ``interval``, one-sided at 5%: the lower end of the 90% interval above 0 is
    ``significant``)."""
    alone = contest.baselines[0]
    primary = alone.targets[0]
    options = expected_gains(measured, contest, alone, selection, confirmation)
    chosen = decide(options)
    sets = [e for e in options if e.option.kind == "groups"]
    best = decide(sets) if sets else None
    comp = claim(measured, best.option, alone, confirmation, selection, AUX_CONFIDENCE) \
        if best else None
    partners = [tasks[t] for t in best.option.groups[0] if t != primary] if best else []
    chosen_partners = partners if best is not None and chosen is best else []
    on = list(best.fresh_seeds) if best and comp else []
    shown = on or measured.measured_on([alone], confirmation) or \
        measured.measured_on([alone], selection)
    return AuxiliaryChoice(
        auxiliaries=chosen_partners, best_measured=partners, **_claim(comp),
        expected_improvement=round(chosen.gain, 6),
        loss=round(float(measured.scores(best.option, on).mean()), 6) if on and best
        else None,
        single_loss=round(float(measured.scores(alone, shown).mean()), 6) if shown else None,
        confirmation_seeds=on,
        verdict=auxiliary_sentence(tasks[primary], chosen_partners, partners, comp,
                                   best.gain if best else None))


def clusterings(affinity: Mapping[str, MeasureResult], tasks: list[str],
                taskset: TaskSet) -> list[dict[str, Any]]:
    """Spectral, agglomerative (each k) and Louvain partitions of the driver's matrix."""
    matrix, rule = affinity[taskset.driver].matrix, taskset.grouping.rule
    out = []
    for method in CLUSTERING_METHODS:
        for k in ([None] if method == "louvain" else taskset.budgets):
            parts = cluster_tasks(matrix, method, k)
            out.append({"method": method, "k": len(parts),
                        "groups": [[tasks[t] for t in p] for p in parts],
                        **{q: round(v, 6) for q, v in
                           partition_quality(matrix, parts, rule).items()}})
    return out


def ranked_auxiliaries(affinity: Mapping[str, MeasureResult], tasks: list[str],
                       taskset: TaskSet) -> dict[str, list[dict[str, Any]]]:
    """``auxiliary[p]``: candidates ranked by the driver's affinity onto p."""
    m = affinity[taskset.driver]
    primaries = taskset.auxiliary.primary or tasks
    return {p: rank_auxiliaries(m.matrix, m.std, tasks.index(p), tasks,
                                taskset.auxiliary.max_aux) for p in primaries}
