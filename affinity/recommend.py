"""Decisions from the evidence: candidate groupings and auxiliary sets for the race, and the
result's groupings, auxiliary choices, clusterings and verdict once the race has run.

Candidates come from every predictor: each affinity measure under each gain rule (sum,
mean; ``grouping/gain.py``) and, when groups of 3+ tasks were trained, the surrogate fitted
to them and the pair gains (``grouping/surrogate.py``). Their best choices for each k are
interleaved by rank, so the race meets every predictor's favourite before any predictor's
runner-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import zip_longest
from typing import Any

import numpy as np
from scipy import stats

from affinity.auxiliary import rank_auxiliaries
from affinity.decision import Expected, claim, decide, expected_gains
from affinity.grouping import CLUSTERING_METHODS, cluster_tasks, partition_quality
from affinity.grouping.gain import RULES, Rule
from affinity.grouping.select import (
    MAX_EXACT_TASKS,
    all_subsets,
    beside_everyone,
    choose_groups,
    top_groupings,
)
from affinity.grouping.surrogate import Surrogate
from affinity.race import Candidate, Contest, Measurements
from affinity.result import MeasureResult, group_lines, is_the_baseline
from affinity.stats import Comparison
from affinity.taskset import TaskSet

Source = tuple[str, np.ndarray, Rule]
AUX_CONFIDENCE = 0.90  # two-sided; its lower end is the one-sided 95% bound


def predictors(affinity: Mapping[str, MeasureResult], taskset: TaskSet,
               surrogate: Surrogate | None) -> list[Source]:
    """(name, matrix, rule) of every predictor: the surrogate (its matrix: the fitted partner
    weights) when there is one, then the task set's driver and rule, then the rest."""
    first: list[Source] = [(f"{taskset.driver}/{taskset.grouping.rule}",
                            affinity[taskset.driver].matrix, taskset.grouping.rule)]
    if surrogate is not None:
        first.insert(0, ("pairwise/surrogate", surrogate.weights, surrogate))
    rest: list[Source] = [(f"{name}/{rule}", m.matrix, rule)
                          for name, m in affinity.items() for rule in RULES]
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


def measured_optimum(measured: Measurements, n_tasks: int, k: int,
                     seeds: list[int]) -> Candidate:
    """Where every subset was trained on ``seeds``: the k groups of the highest summed
    measured gain over training alone (each task served by its best group), mean over
    ``seeds`` (which then chose it: the race and the fresh seed judge it)."""
    pool = all_subsets(n_tasks)
    loss = measured.mean(pool, seeds)
    alone = np.array([loss[pool.index((t,)), t] for t in range(n_tasks)])
    best = choose_groups(pool, (alone - loss) / np.maximum(alone, 1e-12), k)
    return Candidate(tuple(sorted(best.groups)), tuple(range(n_tasks)), "groups",
                     ["measured/exhaustive"])


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
        return {"baseline": None, "improvement": None, "interval": None, "significant": False,
                "worse_beyond_noise": False}
    return {"baseline": c.baseline, "improvement": round(c.improvement, 6),
            "interval": None if c.interval is None else [round(v, 6) for v in c.interval],
            "significant": c.significant,
            "worse_beyond_noise": c.interval is not None and c.interval[1] < 0}


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
                   selection: list[int], confirmation: list[int], k: int) -> dict[str, Any]:
    """The contract's ``groupings`` entry for k: a decision and a claim.

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
    fields = _comparison(comp)
    fields["baseline"] = base.kind
    served = measured.served(chosen.option, serve, on(chosen.option)).tolist()
    return {
        "k": k,
        "groups": _names(tasks, chosen.option.groups),
        "kind": chosen.option.kind,
        "expected_improvement": round(chosen.gain, 6),
        **fields,
        "best_groups": _names(tasks, best.option.groups) if best else
        _names(tasks, as_baseline.groups) if as_baseline else None,
        "best_sources": best.option.sources if best else [],
        "best_expected_improvement": round(best.gain, 6) if best else None,
        "served_by": dict(zip(tasks, served, strict=True)),
        "measured": {t: {"loss": round(float(mine[j]), 6), "single_loss": round(float(alone[j]), 6),
                         "all_in_one_loss": round(float(joint[j]), 6),
                         "gain": round(float((alone[j] - mine[j]) / max(alone[j], 1e-12)), 6),
                         "gain_halfwidth": None if spread is None else round(float(spread[j]), 6)}
                     for j, t in enumerate(tasks)},
        "measured_total_loss": round(float(mine.sum()), 6),
        "measured_seeds": {"groups": on(chosen.option), "single_task": on(single),
                           "all_in_one": on(together)},
        "selection_seeds": list(selection),
        "confirmation_seeds": list(best.fresh_seeds) if best else [],
        "selected_by": _selected_by(chosen, best, base, len(selection)),
        "finalists": [{"groups": _names(tasks, c.groups), "sources": c.sources,
                       "measured_total_loss": round(float(measured.scores(c, selection).mean()),
                                                    6)
                       if measured.measured_on([c], selection) == list(selection) else None}
                      for c in contest.candidates],
    }


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


def auxiliary_choice(tasks: list[str], contest: Contest, measured: Measurements,
                     selection: list[int], confirmation: list[int]) -> dict[str, Any]:
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
    return {"auxiliaries": chosen_partners, "best_measured": partners, **_comparison(comp),
            "expected_improvement": round(chosen.gain, 6),
            "loss": round(float(measured.scores(best.option, on).mean()), 6) if on and best
            else None,
            "single_loss": round(float(measured.scores(alone, shown).mean()), 6)
            if shown else None,
            "confirmation_seeds": on,
            "verdict": _auxiliary_sentence(tasks[primary], chosen_partners, partners, comp,
                                           best)}


def _auxiliary_sentence(primary: str, chosen: list[str], partners: list[str],
                        comp: Comparison | None, best: Expected | None) -> str:
    if chosen:
        head = f"train {primary} with {', '.join(chosen)}"
        if comp is None or comp.interval is None:
            assert best is not None
            return (f"{head}: its loss measured {_pct(best.gain)} lower than alone on the "
                    "seeds that chose them (not confirmed on a fresh seed)")
        lo, hi = comp.interval
        if comp.significant:
            return f"{head}: its loss drops by {_pct(comp.improvement)} ({_pct(lo)} to {_pct(hi)})"
        return (f"{head}: its loss measured {_pct(comp.improvement)} lower than alone, within "
                f"noise ({_pct(lo)} to {_pct(hi)}); training it alone is about as good")
    if not partners:
        return f"train {primary} alone: no auxiliary set was measured"
    if comp is not None and comp.interval is not None:
        lo, hi = comp.interval
        worse = "worse beyond noise" if hi < 0 else "not better beyond noise"
        return (f"train {primary} alone: its best measured auxiliaries ({', '.join(partners)}) "
                f"are {worse} ({_pct(comp.improvement)}: {_pct(lo)} to {_pct(hi)})")
    return (f"train {primary} alone: it measured better than with its best measured "
            f"auxiliaries ({', '.join(partners)})")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if abs(x) < 0.1 else f"{100 * x:.0f}%"


def verdict(entries: list[dict[str, Any]]) -> str:
    """One plain sentence: what to train and how sure that is. The k whose decision leads
    most over the better baseline: beyond noise, within noise ("either is about as good"),
    or not confirmed; where every k's decision is the better baseline, that baseline, with
    the best measured groups' comparison (worse beyond noise where they are)."""
    measured = [e for e in entries if e.get("baseline")]
    if not measured:
        return "not measured: groups chosen by predicted gain only (verification is off)"
    grouped = [e for e in measured if e["kind"] == "groups"]
    if grouped:
        e = max(grouped, key=lambda e: e["expected_improvement"])
        lines = "; ".join(group_lines(e))
        other = _OTHER[e["baseline"]]
        if e["significant"]:
            lo, hi = e["interval"]
            return (f"k = {e['k']} groups cut the total loss by {_pct(e['improvement'])} "
                    f"({_pct(lo)} to {_pct(hi)}) against {other}: {lines}")
        if e["interval"] is not None:
            lo, hi = e["interval"]
            return (f"train k = {e['k']} groups ({lines}): they measured "
                    f"{_pct(e['improvement'])} lower in total loss than {other}, within noise "
                    f"({_pct(lo)} to {_pct(hi)}); either is about as good")
        return (f"train k = {e['k']} groups ({lines}): they measured "
                f"{_pct(e['expected_improvement'])} lower in total loss than {other} "
                "(not confirmed on a fresh seed: no interval)")
    base = measured[0]["baseline"]
    compared = [e for e in measured if not is_the_baseline(e) and e.get("interval")]
    if not compared:
        return f"{_TRAIN[base]}: it measured best of what was measured"
    worse = [e for e in compared if e["worse_beyond_noise"]]
    if len(worse) == len(compared):
        e = max(worse, key=lambda e: e["improvement"])
        lo, hi = e["interval"]
        return (f"{_TRAIN[base]}: the best measured groups are worse beyond noise (k = "
                f"{e['k']}: {_pct(e['improvement'])}, {_pct(lo)} to {_pct(hi)})")
    e = max(compared, key=lambda e: e["improvement"])
    lo, hi = e["interval"]
    return (f"{_TRAIN[base]}: it measured best; the best measured, k = {e['k']} groups, "
            f"differ by {_pct(e['improvement'])} in total loss, within noise ({_pct(lo)} to "
            f"{_pct(hi)}); either is about as good")


_OTHER = {"single_task": "training every task alone", "all_in_one": "one network for all tasks"}
_TRAIN = {"single_task": "train every task alone", "all_in_one": "train all tasks in one network"}


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
