"""Decisions from the evidence: candidate groupings and auxiliary sets for the race, and the
result's groupings, auxiliary choices, clusterings and verdict once the race has run.

Candidates come from every predictor: each affinity measure under each gain rule (sum,
mean; ``grouping/gain.py``) and, when groups of 3+ tasks were trained, the surrogate fitted
to them and the pair gains (``grouping/surrogate.py``). Their best choices for each k are
interleaved by rank, so the race meets every predictor's favourite before any predictor's
runner-up.
"""

from __future__ import annotations

from itertools import zip_longest
from typing import Any

import numpy as np
from scipy import stats

from affinity.auxiliary import rank_auxiliaries
from affinity.grouping import CLUSTERING_METHODS, cluster_tasks, partition_quality
from affinity.grouping.gain import RULES, Rule
from affinity.grouping.select import MAX_EXACT_TASKS, beside_everyone, top_groupings
from affinity.grouping.surrogate import Surrogate
from affinity.race import (
    Candidate,
    Comparison,
    Contest,
    Measurements,
    Prior,
    compare,
    differences,
    network_prior,
    variance_prior,
    winner,
)
from affinity.result import Result, group_lines, is_the_baseline
from affinity.taskset import TaskSet

Source = tuple[str, np.ndarray, Rule]
AUX_CONFIDENCE = 0.90  # two-sided; its lower end is the one-sided 95% bound


def predictors(result: Result, taskset: TaskSet,
               surrogate: Surrogate | None) -> list[Source]:
    """(name, matrix, rule) of every predictor: the surrogate (its matrix: the fitted partner
    weights) when there is one, then the task set's driver and rule, then the rest."""
    first: list[Source] = [(f"{taskset.driver}/{taskset.grouping.rule}",
                            result.affinity[taskset.driver].matrix, taskset.grouping.rule)]
    if surrogate is not None:
        first.insert(0, ("pairwise/surrogate", surrogate.weights, surrogate))
    rest: list[Source] = [(f"{name}/{rule}", m.matrix, rule)
                          for name, m in result.affinity.items() for rule in RULES]
    seen, out = set(), []
    for source in first + rest:
        if source[0] not in seen:
            seen.add(source[0])
            out.append(source)
    return out


def baselines(n_tasks: int) -> list[Candidate]:
    everyone = tuple(range(n_tasks))
    return [Candidate((everyone,), everyone, "all_in_one", ["baseline"]),
            Candidate(tuple((t,) for t in everyone), everyone, "single_task", ["baseline"])]


LEADING_SOURCES = 2
OTHER_SOURCES_EXACT_TASKS = 8
"""The first predictors (the surrogate and the task set's driver) choose over every subset
up to ``MAX_EXACT_TASKS``; the others only up to 8 tasks and from the pruned pool beyond (an
integer program over the 1,023 subsets of 10 tasks takes about 0.2 s, over 255 a
hundredth of that, and the race measures what they propose anyway)."""


def grouping_contest(sources: list[Source], n_tasks: int, k: int, n_best: int) -> Contest:
    """Every predictor's best ``n_best`` choices of k groups, interleaved by rank; for k > 1,
    after the leading predictors' favourites, the all-in-one network plus the k - 1 groups the
    first predictor expects to help most beside it (``select.beside_everyone``)."""
    everyone = tuple(range(n_tasks))
    ranked = [[(name, tuple(sorted(s.groups))) for s in
               top_groupings(matrix, k, n_best=n_best, rule=rule,
                             max_exact_tasks=MAX_EXACT_TASKS if i < LEADING_SOURCES
                             else OTHER_SOURCES_EXACT_TASKS)]
              for i, (name, matrix, rule) in enumerate(sources)]
    name, matrix, rule = sources[0]
    plus = beside_everyone(matrix, k, rule=rule) if k > 1 else None
    if plus is not None:
        ranked.insert(LEADING_SOURCES, [(f"all_in_one_plus/{name}",
                                         tuple(sorted(plus.groups)))])
    found: dict[tuple, Candidate] = {}
    for row in zip_longest(*ranked):
        for item in row:
            if item is None:
                continue
            name, groups = item
            if groups not in found:
                found[groups] = Candidate(groups, everyone, "groups", [])
            found[groups].sources.append(name)
    return Contest(f"k={k}", list(found.values()), baselines(n_tasks))


def auxiliary_contest(sources: list[Source], primary: int, groupings: list[Contest],
                      max_aux: int) -> Contest:
    """For ``primary``: its 1, 2, ... ``max_aux`` best partners by the first predictor (the
    best one a pair the probes trained), then every group of the grouping contests'
    candidates that holds the primary and at most ``max_aux`` others (trained for the
    groupings anyway); the primary alone is the baseline."""
    column = np.asarray(sources[0][1], dtype=float)[:, primary].copy()
    column[primary] = -np.inf
    partners = [int(t) for t in np.argsort(-column, kind="stable")[:max_aux]
                if t != primary]
    found: dict[tuple[int, ...], Candidate] = {}
    for m in range(1, len(partners) + 1):
        g = tuple(sorted((primary, *partners[:m])))
        found[g] = Candidate((g,), (primary,), "groups", [sources[0][0]])
    for contest in groupings:
        for c in contest.candidates:
            for g in c.groups:
                if primary in g and 1 < len(g) <= max_aux + 1:
                    found.setdefault(g, Candidate((g,), (primary,), "groups", []))
                    found[g].sources.append(contest.name)
    alone = Candidate(((primary,),), (primary,), "alone", ["baseline"])
    return Contest(f"auxiliary:{primary}", list(found.values()), [alone])


def _names(tasks: list[str], groups: tuple[tuple[int, ...], ...]) -> list[list[str]]:
    return [[tasks[t] for t in g] for g in groups]


def _comparison(c: Comparison | None) -> dict[str, Any]:
    if c is None:
        return {"baseline": None, "improvement": None, "interval": None, "significant": False}
    return {"baseline": c.baseline, "improvement": round(c.improvement, 6),
            "interval": None if c.interval is None else [round(v, 6) for v in c.interval],
            "significant": c.significant}


def better_baseline(candidates: list[Candidate], measured: Measurements,
                    seeds: list[int]) -> Candidate:
    """Of the baseline ``candidates``, the one of the least mean total loss over ``seeds``."""
    return min(candidates, key=lambda b: measured.scores(b, seeds).mean())


def finalists(contest: Contest, measured: Measurements,
              seeds: list[int]) -> tuple[Candidate | None, Candidate]:
    """The race's winner (None when no candidate survived) and the contest's better
    baseline over ``seeds``: both chosen on the selection seeds."""
    return winner(contest, measured, seeds), better_baseline(contest.baselines, measured, seeds)


def family_prior(pairs: list[tuple[Candidate, Candidate]], measured: Measurements,
                 selection: list[int], confirmation: list[int]) -> Prior | None:
    """The variance prior shared by like (finalist, baseline) comparisons, from their
    seed-paired differences on the confirmation seeds each was measured on."""
    family = []
    for best, base in pairs:
        on = measured.measured_on([best, base], confirmation)
        if on:
            family.append(differences(measured, best, base, on, selection))
    return variance_prior(family)


def grouping_entry(tasks: list[str], contest: Contest, measured: Measurements,
                   selection: list[int], confirmation: list[int], k: int) -> dict[str, Any]:
    """The contract's ``groupings`` entry for k from a finished race and its confirmation.

    The race's winner and the group serving each task are chosen on the ``selection`` seeds,
    the better baseline on them and on the confirmation seeds that measured both baselines
    (picking the better of two can only flatter the baseline, so an improvement against it
    is, if anything, understated); ``baseline``, ``improvement``, ``interval`` and ``significant``
    compare the winner with that baseline on the ``confirmation`` seeds only (paired, a
    t-interval on their variance moderated by the one the networks' own seed-to-seed spread
    predicts: ``network_prior``), which chose nothing, so the selection's optimism does not
    enter them. ``groups`` is what to train at this budget: the winner where it beats the
    better baseline beyond noise on the confirmation seeds (``significant``), else that
    baseline (``kind`` says which), as the verdict says. The per-task losses are over the
    confirmation seeds (the selection seeds without any). Where the winner is the better
    baseline itself (k = 1 against one network for all, k = T against every task alone),
    there is nothing to compare: no improvement.
    """
    best = winner(contest, measured, selection)
    base = better_baseline(contest.baselines, measured,
                           measured.measured_on(contest.baselines, [*selection, *confirmation]))
    together, single = baselines(len(tasks))
    fresh = measured.measured_on([best, base] if best else [base], confirmation)
    if best is not None and not fresh and not measured.measured_on([best], selection):
        best = None  # chosen by prediction and never trained: nothing to compare
    # a finalist chosen by prediction alone (the budget raced nothing) serves each task by
    # its group on the confirmation seeds, the only ones it was measured on
    serve = selection if best is None or measured.measured_on([best], selection) else fresh
    comp = compare(measured, best, base, fresh, network_prior(measured, best, base, fresh, serve),
                   serve_on=serve) \
        if best is not None and fresh and best.groups != base.groups else None
    chosen = best if best is not None and comp is not None and comp.significant else base

    def on(*cs: Candidate) -> list[int]:
        return measured.measured_on(cs, confirmation) or measured.measured_on(cs, selection)

    served = dict(zip(tasks, measured.served(chosen, serve, on(chosen)).tolist(), strict=True))

    def per_task(c: Candidate) -> np.ndarray:
        return measured.task_losses(c, on(c), serve).mean(axis=0)

    mine, alone, joint = per_task(chosen), per_task(single), per_task(together)
    paired = on(chosen, single)
    spread = _gain_halfwidths(measured.task_losses(single, paired, serve),
                              measured.task_losses(chosen, paired, serve)) if paired else None
    fields = _comparison(comp)
    fields["baseline"] = base.kind
    return {
        "k": k,
        "groups": _names(tasks, chosen.groups),
        "kind": chosen.kind,
        **fields,
        "best_groups": _names(tasks, best.groups) if best else None,
        "best_sources": best.sources if best else [],
        "served_by": served,
        "measured": {t: {"loss": round(float(mine[j]), 6), "single_loss": round(float(alone[j]), 6),
                         "all_in_one_loss": round(float(joint[j]), 6),
                         "gain": round(float((alone[j] - mine[j]) / max(alone[j], 1e-12)), 6),
                         "gain_halfwidth": None if spread is None else round(float(spread[j]), 6)}
                     for j, t in enumerate(tasks)},
        "measured_total_loss": round(float(mine.sum()), 6),
        "measured_seeds": {"groups": on(chosen), "single_task": on(single),
                           "all_in_one": on(together)},
        "selection_seeds": list(selection),
        "confirmation_seeds": fresh,
        "selected_by": f"race: {len(contest.candidates)} finalist(s) chosen on "
                       f"{len(selection)} seed(s), confirmed on {len(fresh)} fresh seed(s) "
                       f"against {base.kind.replace('_', '-')} training",
        "finalists": [{"groups": _names(tasks, c.groups), "sources": c.sources,
                       "measured_total_loss": round(float(measured.scores(c, selection).mean()),
                                                    6)
                       if measured.measured_on([c], selection) == list(selection) else None}
                      for c in contest.candidates],
    }


def _gain_halfwidths(alone: np.ndarray, mine: np.ndarray) -> np.ndarray | None:
    """Half-widths of 95% t-intervals of each task's gain over training alone, from the
    seed-paired losses (seeds, tasks); None with one seed."""
    if len(alone) < 2:
        return None
    diff = (alone - mine) / np.maximum(alone.mean(axis=0), 1e-12)
    return stats.t.ppf(0.975, len(diff) - 1) * diff.std(axis=0, ddof=1) / np.sqrt(len(diff))


def predicted_entry(tasks: list[str], source: Source, k: int) -> dict[str, Any]:
    """A ``groupings`` entry chosen by predicted gain alone (no race)."""
    name, matrix, rule = source
    sel = top_groupings(matrix, k, rule=rule)[0]
    return {"k": k, "groups": _names(tasks, tuple(sel.groups)), "kind": "groups",
            **_comparison(None),
            "served_by": {tasks[j]: sel.served_by[j] for j in range(len(tasks))},
            "predicted_gain": {tasks[j]: round(float(sel.task_gain[j]), 6)
                               for j in range(len(tasks))},
            "selected_by": f"predicted gain ({name}); not measured"}


def best_auxiliaries(contest: Contest, measured: Measurements,
                     seeds: list[int]) -> Candidate | None:
    """The primary's best measured auxiliary set on the selection ``seeds``. Of every
    candidate the contest entered that was measured on at least two of them, the one most
    surely better than the primary alone: the highest lower end of its interval (a set
    measured on two seeds with a larger mean drop is less sure than one measured on five).
    The race halves a contest on its first seeds, so a candidate dropped after two seeds may
    lead. With none measured twice, the race's winner over ``seeds``."""
    alone = contest.baselines[0]
    found = []
    for c in contest.entered:
        on = measured.measured_on([c], seeds)
        if len(on) > 1:
            found.append((c, compare(measured, c, alone, on, None, AUX_CONFIDENCE)))
    if found:
        return max(found, key=lambda item: item[1].interval[0] if item[1].interval
                   else -np.inf)[0]
    return winner(contest, measured, seeds)


def auxiliary_choice(tasks: list[str], contest: Contest, best: Candidate | None,
                     measured: Measurements, confirmation: list[int],
                     prior: Prior | None = None) -> dict[str, Any]:
    """The primary's best auxiliary set (``best``, chosen on the selection seeds by
    ``best_auxiliaries``), recommended only when it beats training the primary alone beyond
    noise on the ``confirmation`` seeds it was measured on (``prior``: the variance prior of
    every primary's comparison), which chose nothing.

    The question is one-sided (do the auxiliaries lower p's loss?), so "beyond noise" is a
    one-sided test at 5%: the lower end of the 90% interval is above 0."""
    alone = contest.baselines[0]
    primary = alone.targets[0]
    partners = [tasks[t] for t in best.groups[0] if t != primary] if best else []
    on = measured.measured_on([best, alone], confirmation) if best else []
    comp = compare(measured, best, alone, on, prior, AUX_CONFIDENCE) if best and on else None
    chosen = partners if comp and comp.significant else []
    if chosen:
        assert comp is not None and comp.interval is not None  # significant: measured
        lo, hi = comp.interval
        sentence = (f"train {tasks[primary]} with {', '.join(chosen)}: its loss drops by "
                    f"{_pct(comp.improvement)} ({_pct(lo)} to {_pct(hi)})")
    elif partners and not on:
        sentence = (f"train {tasks[primary]} alone: the budget left no fresh seed to confirm "
                    f"its best measured auxiliaries ({', '.join(partners)})")
    else:
        sentence = f"train {tasks[primary]} alone: no auxiliary set beats it beyond noise"
    shown = on or measured.measured_on([alone], confirmation)
    return {"auxiliaries": chosen, "best_measured": partners, **_comparison(comp),
            "loss": round(float(measured.scores(best, on).mean()), 6) if best and on else None,
            "single_loss": round(float(measured.scores(alone, shown).mean()), 6)
            if shown else None,
            "confirmation_seeds": on, "verdict": sentence}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if abs(x) < 0.1 else f"{100 * x:.0f}%"


def verdict(entries: list[dict[str, Any]]) -> str:
    """One plain sentence: the best grouping beyond noise, or which baseline is as good."""
    wins = [e for e in entries if e["kind"] == "groups" and e["significant"]]
    if wins:
        e = max(wins, key=lambda e: e["improvement"])
        lo, hi = e["interval"]
        return (f"k = {e['k']} groups cut the total loss by {_pct(e['improvement'])} "
                f"({_pct(lo)} to {_pct(hi)}) against {_OTHER[e['baseline']]}: "
                + "; ".join(group_lines(e)))
    measured = [e for e in entries if e.get("baseline")]
    if not measured:
        return "not measured: groups chosen by predicted gain only (verification is off)"
    base = measured[0]["baseline"]
    compared = [e for e in measured if not is_the_baseline(e)]
    if not compared:  # every k asked for is the better baseline itself
        return f"{_TRAIN[base]}: it is the better baseline; no other grouping was asked for"
    if all(e["interval"] is None for e in compared):
        return ("too little budget to measure beyond noise (fewer than two fresh seeds): "
                f"{_TRAIN[base]}, the better baseline as measured, or "
                "raise budget.training_runs for a verdict")
    ahead = [e for e in compared if e.get("best_groups") and e["interval"] is not None
             and e["improvement"] > 0]
    if not ahead:
        if base == "single_task":
            return "train every task alone: no grouping beats it beyond noise"
        return "train all tasks in one network; grouping does not matter here beyond noise"
    e = max(ahead, key=lambda e: e["improvement"])
    lo, hi = e["interval"]
    return (f"grouping does not matter here beyond noise: the best measured, k = {e['k']} "
            f"groups, is {_pct(e['improvement'])} lower in total loss than "
            f"{_OTHER[e['baseline']]} ({_pct(lo)} to {_pct(hi)})")


_OTHER = {"single_task": "training every task alone", "all_in_one": "one network for all tasks"}
_TRAIN = {"single_task": "train every task alone", "all_in_one": "train all tasks in one network"}


def clusterings(result: Result, taskset: TaskSet) -> list[dict[str, Any]]:
    """Spectral, agglomerative (each k) and Louvain partitions of the driver's matrix."""
    matrix, rule, tasks = result.affinity[taskset.driver].matrix, taskset.grouping.rule, \
        result.tasks
    out = []
    for method in CLUSTERING_METHODS:
        for k in ([None] if method == "louvain" else taskset.budgets):
            parts = cluster_tasks(matrix, method, k)
            out.append({"method": method, "k": len(parts),
                        "groups": [[tasks[t] for t in p] for p in parts],
                        **{q: round(v, 6) for q, v in
                           partition_quality(matrix, parts, rule).items()}})
    return out


def ranked_auxiliaries(result: Result, taskset: TaskSet) -> dict[str, list[dict[str, Any]]]:
    """``auxiliary[p]``: candidates ranked by the driver's affinity onto p."""
    m = result.affinity[taskset.driver]
    primaries = taskset.auxiliary.primary or result.tasks
    return {p: rank_auxiliaries(m.matrix, m.std, result.tasks.index(p), result.tasks,
                                taskset.auxiliary.max_aux) for p in primaries}
