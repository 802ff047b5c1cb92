"""Candidate groupings at 20 and 40 tasks: time, memory and how near the local search comes
to the integer program's optimum over the same pool.

Affinity matrices are generated: T tasks in 5 hidden clusters, affinity N(0.04, 0.03) within
a cluster and N(-0.02, 0.03) across, five matrices (five measures) each under the sum and the
mean rule: ten predictors, as in an analysis. Beyond ``MAX_EXACT_TASKS`` every predictor
chooses from its pruned pool; beyond ``MAX_PROGRAM_GROUPS`` pool groups, by local search.

1. The race's candidates for k = 2..5 (``candidates.grouping_contest``, every predictor's best
   three), at T = 20 and T = 40: seconds and the process' peak memory.
2. The naive way, same pools: the integer program (HiGHS) for every predictor and k at
   T = 16 and 20, against the local search: seconds, and how often the search reaches the
   program's optimum (its relative shortfall where it does not).

Prints a table; exits 1 when a target is missed: at T = 40, k = 2..5 in < 10 s and < 1 GB;
the local search reaches the optimum in >= 80% of the choices, mean shortfall <= 3%.

    python -m bench.targets.selection
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

from affinity.candidates import Source, grouping_contest
from affinity.grouping.gain import group_gains
from affinity.grouping.select import (
    by_integer_program,
    by_local_search,
    pruned_pool,
)
from bench.verdict import verdict

KS = (2, 3, 4, 5)
TARGET_SECONDS_T40 = 10.0
TARGET_MEMORY_GB = 1.0
TARGET_OPTIMAL_SHARE = 0.80
TARGET_MEAN_SHORTFALL = 0.03


def predictors(n_tasks: int, seed: int) -> list[Source]:
    """Ten predictors on one hidden clustering: five noisy matrices, each under both rules."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 5, n_tasks)
    same = label[:, None] == label[None, :]
    out: list[Source] = []
    for m in range(5):
        a = np.where(same, rng.normal(0.04, 0.03, (n_tasks, n_tasks)),
                     rng.normal(-0.02, 0.03, (n_tasks, n_tasks)))
        np.fill_diagonal(a, 0.0)
        out += [(f"m{m}/{rule}", a, rule) for rule in ("sum", "mean")]
    return out


def contest_seconds(n_tasks: int) -> float:
    """Seconds for the race's candidates for every k of ``KS``, ten predictors."""
    sources = predictors(n_tasks, seed=n_tasks)
    started = time.perf_counter()
    for k in KS:
        grouping_contest(sources, n_tasks, k, 3)
    return time.perf_counter() - started


def against_the_program(n_tasks: int, seed: int) -> list[tuple[float, float, float, float]]:
    """Per predictor and k: (search total, program total, search s, program s)."""
    rows = []
    for _, matrix, rule in predictors(n_tasks, seed):
        pool = pruned_pool(matrix, rule)
        gains = group_gains(matrix, pool, rule)
        for k in KS:
            started = time.perf_counter()
            found = by_local_search(pool, gains, k)
            searched = time.perf_counter() - started
            started = time.perf_counter()
            best = by_integer_program(pool, gains, k)
            programmed = time.perf_counter() - started
            rows.append((found.total_gain if found else -np.inf, best.total_gain,
                         searched, programmed))
    return rows


def main() -> int:
    missed = []
    print(f"{'T':>3} {'k':>7} {'predictors':>10} {'seconds':>8} {'peak GB':>8}")
    for n in (20, 40):
        seconds = contest_seconds(n)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
        print(f"{n:3d} {'2..5':>7} {10:10d} {seconds:8.2f} {peak:8.2f}")
        if n == 40 and seconds > TARGET_SECONDS_T40:
            missed.append(f"T = 40: {seconds:.1f} s > {TARGET_SECONDS_T40} s")
        if n == 40 and peak > TARGET_MEMORY_GB:
            missed.append(f"T = 40: peak {peak:.2f} GB > {TARGET_MEMORY_GB} GB")
    rows = np.array([r for n in (16, 20) for seed in (1, 2) for r in against_the_program(n, seed)])
    ours, best = rows[:, 0], rows[:, 1]
    shortfall = np.where(np.abs(best) > 0, (best - ours) / np.abs(best), 0.0)
    optimal = float(np.mean(shortfall < 1e-9))
    print(f"\nlocal search against the integer program, same pruned pools (T = 16 and 20, "
          f"2 draws, 10 predictors, k = 2..5: {len(rows)} choices)")
    print(f"  optimum reached {100 * optimal:.0f}%; shortfall mean {100 * shortfall.mean():.1f}%"
          f", worst {100 * shortfall.max():.1f}%")
    print(f"  seconds per choice: search {rows[:, 2].mean():.3f}, program {rows[:, 3].mean():.3f}"
          f" (ratio {rows[:, 3].sum() / rows[:, 2].sum():.1f}x)")
    if optimal < TARGET_OPTIMAL_SHARE:
        missed.append(f"optimum reached in {100 * optimal:.0f}% < "
                      f"{100 * TARGET_OPTIMAL_SHARE:.0f}%")
    if shortfall.mean() > TARGET_MEAN_SHORTFALL:
        missed.append(f"mean shortfall {100 * shortfall.mean():.1f}% > "
                      f"{100 * TARGET_MEAN_SHORTFALL:.0f}%")
    return verdict(missed)


if __name__ == "__main__":
    sys.exit(main())
