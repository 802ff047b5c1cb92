"""Which test should decide that auxiliary tasks help? A simulation on the exhaustive truth.

For each set, the race's auxiliary candidates of every primary (the groups ``analyze`` puts in
each primary's contest) are "measured" on n of the truth's seeds: the best one by mean loss
is picked, a rule decides whether to recommend it, and the choice is scored on the other
truth seeds (auxiliary regret, as in ``bench/targets/grouping.py``). In the null world every group's
loss for the primary is drawn from the primary-alone losses, so no auxiliary helps, and the
table gives the share of primaries that a rule still gives auxiliaries to.

Rules: the one-sided 5% t-test with the variance shared across primaries (what
``recommend.auxiliary_choice`` does), the same at 10%, an empirical-Bayes normal prior on
the gains (fitted to each primary's winner, to every candidate of the primary, or to every
candidate of every primary; recommend when the posterior gives a gain at least 95%), a
max-T permutation test over the candidates (exact under the null), the one-sided 5% t-test
with the variance of a seed-blocked design (the residual of an additive candidate + seed
model over all of the primary's candidates, with far more degrees of freedom than one
comparison's), and no test.

    python -m bench.studies.aux_rules [NAME ...] [--draws 20] [--seeds 2 3 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy import stats

import affinity.analysis as analysis
from affinity.data import load_dataset
from affinity.race import Candidate, Measurements
from affinity.recommend import AUX_CONFIDENCE
from affinity.stats import compare, differences, variance_prior
from affinity.threads import limited_threads
from bench.data.sklearn_sets import DATASETS
from bench.truths.ground_truth import Truth

Pools = dict[int, list[tuple[int, ...]]]
PERMUTATIONS = 200
LEVEL = 0.95


def race_pools(name: str) -> tuple[Pools, int]:
    """Each primary's auxiliary candidates as ``analyze`` races them, and ``max_aux``."""
    pools: Pools = {}
    race = analysis.run_race

    def capture(contests, *args, **kwargs):  # type: ignore[no-untyped-def]
        for c in contests:
            if c.name.startswith("auxiliary:"):
                pools[int(c.name.split(":")[1])] = [cand.groups[0] for cand in c.candidates]
        return race(contests, *args, **kwargs)

    with tempfile.TemporaryDirectory() as folder:
        taskset = DATASETS[name](Path(folder))
        data = load_dataset(taskset)
    analysis.run_race = capture
    try:
        analysis.analyze(taskset, data=data, device=torch.device("cpu"))
    finally:
        analysis.run_race = race
    return pools, taskset.auxiliary.max_aux


def _gains(m: Measurements, p: int, groups: list[tuple[int, ...]],
           seeds: list[int]) -> np.ndarray:
    """(seeds, groups): p's relative drop in loss against p alone, per seed."""
    alone = np.array([m.loss[(p,), s][p] for s in seeds])
    loss = np.array([[m.loss[g, s][p] for g in groups] for s in seeds])
    return (alone[:, None] - loss) / alone.mean()


def _posterior_gain(mean: float, var: float, members: np.ndarray, members_var: float,
                    var_mu: float) -> bool:
    """Whether a normal prior fitted by moments to ``members`` (mean gains, each with
    sampling variance ``members_var``; their mean's own variance ``var_mu``) puts a gain
    measured at ``mean`` (variance ``var``) above 0 with probability ``LEVEL``."""
    tau2 = max(0.0, float(members.var(ddof=1)) - members_var)
    shrink = var / (var + tau2) if var + tau2 > 0 else 1.0
    post = shrink * float(members.mean()) + (1 - shrink) * mean
    post_var = (1 - shrink) * var + shrink ** 2 * var_mu
    return bool(post > stats.norm.ppf(LEVEL) * np.sqrt(post_var))


def _max_t(gains: np.ndarray, rng: np.random.Generator) -> bool:
    """Max-T permutation test: the best candidate's mean gain against its distribution when,
    on each seed, the losses of p alone and of every candidate are exchangeable."""
    def best(g: np.ndarray) -> float:
        return float(g.mean(axis=0).max())

    loss = np.concatenate([np.zeros((len(gains), 1)), -gains], axis=1)  # alone first
    hits = 0
    for _ in range(PERMUTATIONS):
        shuffled = np.array([row[rng.permutation(len(row))] for row in loss])
        hits += best(shuffled[:, :1] - shuffled[:, 1:]) >= best(gains) - 1e-15
    return (1 + hits) / (1 + PERMUTATIONS) <= 1 - LEVEL


def _blocked(gains: np.ndarray, best: int) -> bool:
    """The one-sided 5% t-test of the best candidate against p alone with the variance of a
    seed-blocked design: the residual variance of p's losses (alone and every candidate, an
    additive model of candidate plus seed) over all of the primary's candidates."""
    loss = np.concatenate([np.zeros((len(gains), 1)), -gains], axis=1)  # alone first
    n, g = loss.shape
    resid = loss - loss.mean(axis=0) - loss.mean(axis=1, keepdims=True) + loss.mean()
    df = (n - 1) * (g - 1)
    if df < 1:
        return False
    var = float((resid ** 2).sum()) / df
    diff = float(gains[:, best].mean())
    return bool(diff > stats.t.ppf(LEVEL, df) * np.sqrt(2 * var / n))


def decide(m: Measurements, pools: Pools, seeds: list[int],
           rng: np.random.Generator) -> tuple[dict[int, tuple[int, ...]], dict[str, set[int]]]:
    """Each primary's best candidate on ``seeds``, and per rule the primaries it recommends
    that candidate for."""
    picks, gains = {}, {}
    for p, pool in pools.items():
        gains[p] = _gains(m, p, pool, seeds)
        picks[p] = int(np.argmax(gains[p].mean(axis=0)))
    alone = {p: Candidate(((p,),), (p,), "alone") for p in pools}
    best = {p: Candidate((pools[p][picks[p]],), (p,)) for p in pools}
    prior = variance_prior([differences(m, best[p], alone[p], seeds) for p in pools])
    rules: dict[str, set[int]] = {"t5 (kept)": set(), "t10": set(), "eb winners": set(),
                                  "eb primary": set(), "eb all": set(), "max-T": set(),
                                  "blocked": set(), "no test": set(pools)}
    n = len(seeds)
    noise = {p: float(gains[p].var(axis=0, ddof=1).mean()) for p in pools}  # a seed's
    winners = np.array([gains[p][:, picks[p]].mean() for p in pools])
    noise_all = float(np.mean(list(noise.values())))
    z_all = np.concatenate([gains[p].mean(axis=0) / np.sqrt(noise[p]) for p in pools])
    z_seed = np.mean([(gains[p] / np.sqrt(noise[p])).mean(axis=1) for p in pools], axis=0)
    for p in pools:
        own = float(gains[p][:, picks[p]].mean())
        if compare(m, best[p], alone[p], seeds, prior, AUX_CONFIDENCE).significant:
            rules["t5 (kept)"].add(p)
        if compare(m, best[p], alone[p], seeds, prior, 0.80).significant:
            rules["t10"].add(p)
        if _posterior_gain(own, noise[p] / n, winners, noise_all / n,
                           noise_all / n / len(pools)):
            rules["eb winners"].add(p)
        by_seed = gains[p].mean(axis=1)
        if _posterior_gain(own, noise[p] / n, gains[p].mean(axis=0), noise[p] / n,
                           float(by_seed.var(ddof=1)) / n):
            rules["eb primary"].add(p)
        if _posterior_gain(own / np.sqrt(noise[p]), 1 / n, z_all, 1 / n,
                           float(z_seed.var(ddof=1)) / n):
            rules["eb all"].add(p)
        if _max_t(gains[p], rng):
            rules["max-T"].add(p)
        if _blocked(gains[p], picks[p]):
            rules["blocked"].add(p)
    return {p: pools[p][picks[p]] for p in pools}, rules


def _measure(truth: Truth, pools: Pools, seeds: np.ndarray,
             loss: Callable[[tuple[int, ...], int, int], float]) -> Measurements:
    m = Measurements()
    n = len(truth.tasks)
    for s in seeds:
        for p, pool in pools.items():
            for g in [(p,), *pool]:
                row = m.loss.setdefault((g, int(s)), np.full(n, np.nan))
                row[p] = loss(g, int(s), p)
    return m


def simulate(name: str, draws: int, ns: list[int], rng: np.random.Generator) -> dict:
    truth = Truth.read(name)
    pools, max_aux = race_pools(name)
    alone = {p: truth.loss[:, truth.index[(p,)], p] for p in pools}
    out: dict = {}
    for n in ns:
        regret: dict[str, list[float]] = {}
        null: dict[str, list[float]] = {}
        for _ in range(draws):
            order = rng.permutation(len(truth.loss))
            chosen, scored = np.sort(order[:n]), np.sort(order[n:])
            held = Truth(truth.tasks, truth.subsets, truth.loss[scored])
            m = _measure(truth, pools, chosen,
                         lambda g, s, p: float(truth.loss[s, truth.index[g], p]))
            picks, rules = decide(m, pools, [int(s) for s in chosen], rng)
            for rule, yes in rules.items():
                regret.setdefault(rule, []).append(float(np.mean(
                    [held.aux_regret(p, tuple(t for t in picks[p] if t != p) if p in yes
                                     else (), max_aux) for p in pools])))
            m = _measure(truth, pools, chosen, lambda g, s, p: float(rng.choice(alone[p])))
            for rule, yes in decide(m, pools, [int(s) for s in chosen], rng)[1].items():
                null.setdefault(rule, []).append(len(yes) / len(pools))
        out[n] = {rule: (float(np.mean(regret[rule])), float(np.mean(null[rule])))
                  for rule in regret}
        print(f"{name} n={n}: " + ", ".join(f"{r} {a:.2f} ({b:.0%})"
                                              for r, (a, b) in out[n].items()), flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(DATASETS))
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 3, 5])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with limited_threads(None):
        sets = {name: simulate(name, args.draws, args.seeds, rng) for name in args.names}
    rules = list(next(iter(next(iter(sets.values())).values())))
    print(f"\n{'rule':12} " + " ".join(f"{'regret n=' + str(n):>11}" for n in args.seeds)
          + "  recommended in the null (per set, n = " + "/".join(map(str, args.seeds)) + ")")
    for rule in rules:
        regret = [np.mean([s[n][rule][0] for s in sets.values()]) for n in args.seeds]
        null = [s[n][rule][1] for s in sets.values() for n in args.seeds]
        print(f"{rule:12} " + " ".join(f"{r:11.2f}" for r in regret)
              + f"  {min(null):.0%}-{max(null):.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
