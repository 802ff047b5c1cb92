"""The race's contestants: every predictor of group gains, the candidate groupings each k's
contest enters and the auxiliary sets each primary's contest enters, beside the baselines.

Candidates come from every predictor: each affinity measure under each gain rule (sum,
mean; ``grouping/gain.py``) and, when groups of 3+ tasks were trained, the surrogate fitted
to them and the pair gains (``grouping/surrogate.py``). Their best choices for each k are
interleaved by rank, so the race meets every predictor's favourite before any predictor's
runner-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import zip_longest

import numpy as np

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
from affinity.result import MeasureResult
from affinity.taskset import TaskSet

Source = tuple[str, np.ndarray, Rule]


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
