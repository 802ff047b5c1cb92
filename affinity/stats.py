"""The statistics of comparisons, in one place: seed-paired differences, their intervals and
variances, and the shrinkage of estimates that chose themselves.

Inputs are validation losses of trained networks (``race.Measurements``), one per network and
seed; a comparison reads only the networks in which its two sides differ
(``race.differing``). Assumptions, each stated where it is used:

- Seed-paired differences are unbiased draws where the seeds did not choose what they
  compare, and roughly normal across seeds (``compare``).
- The networks of a comparison vary independently from seed to seed (``network_prior``):
  whatever the networks of one seed share makes their difference vary less, so the summed
  variance errs wide.
- A family of like comparisons shares an empirical-Bayes prior of their variance, as limma's
  moderated t does (Smyth 2004, "Linear models and empirical Bayes methods for assessing
  differential expression"; ``variance_prior``).
- The true effects of the candidates raced are normal around a common mean (``shrink``:
  Morris 1983, parametric empirical Bayes), which corrects the winner's curse of the seeds
  that chose among them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from affinity.race import Candidate, Group, Measurements, differing


@dataclass
class Comparison:
    """A candidate against a baseline over paired seeds: relative drop of the score."""

    baseline: str
    improvement: float
    interval: tuple[float, float] | None
    significant: bool


@dataclass(frozen=True)
class Prior:
    """The variance of a family's seed-paired differences, worth ``df`` degrees of freedom."""

    variance: float
    df: float


def differences(measured: Measurements, candidate: Candidate, baseline: Candidate,
                seeds: Sequence[int], serve_on: Sequence[int] | None = None) -> np.ndarray:
    """Per seed, (baseline - candidate) / the baseline's total loss: the relative drop. Only
    the tasks whose serving network differs (``differing``, the serving chosen on
    ``serve_on``, default ``seeds``) are read, so a seed needs only those networks; the
    baseline's total loss is its mean over ``seeds``, or where they did not train it whole,
    over every seed that did (at least the probes')."""
    serve = serve_on if serve_on is not None else seeds
    parts = differing(measured, candidate, baseline, serve, seeds)
    drop = np.array([sum(measured.loss[b, s][t] - measured.loss[a, s][t] for t, a, b in parts)
                     for s in seeds], dtype=float)
    return drop / _scale(measured, baseline, seeds, serve)


def _scale(measured: Measurements, baseline: Candidate, seeds: Sequence[int],
           serve_on: Sequence[int]) -> float:
    """The baseline's total loss that a relative difference divides by: its mean over
    ``seeds``, or where they did not train it whole, over every seed that did."""
    whole = measured.measured_on([baseline], seeds)
    return max(float(measured.scores(baseline, whole, serve_on).mean()), 1e-12) if whole \
        else measured.total(baseline, serve_on)


def variance_prior(family: Sequence[np.ndarray]) -> Prior | None:
    """The empirical-Bayes prior of the variances of ``family`` (each an array of seed-paired
    differences), fitted by limma's moments of log variances; its degrees of freedom are at
    most the family's own. None when fewer than two members have a variance."""
    var = np.array([d.var(ddof=1) for d in family if len(d) > 1])
    dfs = np.array([len(d) - 1 for d in family if len(d) > 1], dtype=float)
    keep = var > 0
    var, dfs = var[keep], dfs[keep]
    if len(var) < 2:
        return None
    e = np.log(var) - special.digamma(dfs / 2) + np.log(dfs / 2)
    excess = e.var(ddof=1) - special.polygamma(1, dfs / 2).mean()
    pooled = float(dfs.sum())
    if excess <= special.polygamma(1, pooled / 2):
        d0 = pooled  # the variances agree as well as pure noise would: pool them
    else:
        d0 = min(pooled, 2 * optimize.brentq(lambda x: special.polygamma(1, x) - excess,
                                             1e-8, 1e8))
    return Prior(float(np.exp(e.mean() + special.digamma(d0 / 2) - np.log(d0 / 2))), d0)


def network_prior(measured: Measurements, candidate: Candidate, baseline: Candidate,
                  seeds: Sequence[int], serve_on: Sequence[int] | None = None) -> Prior | None:
    """The variance of ``differences(candidate, baseline, seeds)`` predicted from each
    network's own seed-to-seed spread, over every seed it was trained on, worth the
    Welch-Satterthwaite degrees of freedom; None where a network it needs has one seed.

    A seed-paired difference is a sum over networks: each network of the two candidates adds
    the losses of the tasks it serves in the candidate and subtracts those it serves in the
    baseline (a task served by the same network in both cancels). Taking the networks as
    independent across seeds (a seed draws each network's initialisation and batch order;
    whatever the networks of one seed share makes their difference vary less, so the sum is,
    if anything, too wide), the variance is the sum of theirs. Two fresh seeds alone can agree
    by chance and give an interval far narrower than the truth's spread; the networks were
    mostly trained on more seeds (probes, race) than the comparison has."""
    weights: dict[Group, np.ndarray] = {}
    n_tasks = len(next(iter(measured.loss.values()))) if measured.loss else 0
    serve = serve_on if serve_on is not None else seeds
    for c, sign in ((candidate, 1.0), (baseline, -1.0)):
        for task, g in zip(c.targets, measured.served(c, serve, seeds).tolist(), strict=True):
            w = weights.setdefault(c.groups[g], np.zeros(n_tasks))
            w[task] += sign
    parts = []
    for group, w in weights.items():
        if not w.any():
            continue
        on = sorted(s for (g, s) in measured.loss if g == group)
        if len(on) < 2:
            return None
        totals = np.array([np.nansum(measured.loss[group, s] * w) for s in on])
        parts.append((float(totals.var(ddof=1)), len(on) - 1))
    total = sum(v for v, _ in parts)
    if not parts or total <= 0:
        return None
    df = total ** 2 / sum(v ** 2 / d for v, d in parts if v > 0)
    scale = _scale(measured, baseline, seeds, serve)
    return Prior(total / scale ** 2, df)


def compare(measured: Measurements, candidate: Candidate, baseline: Candidate,
            seeds: Sequence[int], prior: Prior | None = None,
            confidence: float = 0.95, serve_on: Sequence[int] | None = None) -> Comparison:
    """Improvement (baseline - candidate) / baseline of the mean scores, with a t-interval of
    ``confidence`` from the seed-paired differences, their variance moderated by ``prior``
    (the family's, or the networks' own spread: with one seed, the prior alone gives the
    interval; with neither, one seed gives none); significant when it excludes 0 above.

    Assumptions: ``seeds`` did not choose the candidate, the baseline or (``serve_on``) the
    group serving each task, so the differences are unbiased draws; they are roughly normal
    across seeds. On the seeds that chose the candidate among many, its lead is inflated
    (the winner's curse) and the interval does not cover the truth."""
    diff = differences(measured, candidate, baseline, seeds, serve_on)
    n = len(diff)
    own_df = n - 1
    own_var = float(diff.var(ddof=1)) if n > 1 else 0.0
    prior_df, prior_var = (prior.df, prior.variance) if prior else (0.0, 0.0)
    interval = None
    if own_df + prior_df > 0:
        df = own_df + prior_df
        var = (prior_df * prior_var + own_df * own_var) / df
        half = stats.t.ppf((1 + confidence) / 2, df) * math.sqrt(var / n)
        interval = (float(diff.mean() - half), float(diff.mean() + half))
    significant = interval is not None and interval[0] > 0
    return Comparison(baseline.kind, float(diff.mean()), interval, significant)


def shrink(estimates: list[tuple[np.ndarray, float]]) -> list[tuple[float, float]]:
    """(mean, variance) of each candidate's selection-seed mean shrunk towards the mean of
    the candidates' precision-weighted mean (empirical Bayes with Morris's correction for the
    estimated mean). A candidate with no selection seed gets (0, inf); one of unknown variance, and
    every one where fewer than three are known, keeps its mean as measured."""
    means = np.array([d.mean() if len(d) else 0.0 for d, _ in estimates])
    se2 = np.array([v / len(d) if len(d) else np.inf for d, v in estimates])
    used = np.isfinite(se2)
    out = [(float(m), float(v)) for m, v in zip(means, se2, strict=True)]
    if used.sum() < 3:  # too few to tell the spread of true effects from noise
        return out
    m, v = means[used], se2[used]
    # the spread of true effects by moments, at least what the estimated mean leaves unknown
    # (at 0 every candidate would be shrunk to one value and their order lost)
    tau2 = max(float(v.mean()) / len(m), float(m.var(ddof=1) - v.mean()))
    w = 1 / (tau2 + v)
    mu = float(np.dot(w, m) / w.sum())
    var_mu = float(1 / w.sum())
    for i in np.flatnonzero(used):
        b = se2[i] / (tau2 + se2[i]) if tau2 + se2[i] > 0 else 1.0
        out[i] = (float(means[i] - b * (means[i] - mu)),
                  float((1 - b) * se2[i] + b * b * var_mu))
    return out


def combine(parts: list[tuple[float, float]]) -> tuple[float, float]:
    """Precision-weighted mean and variance of independent estimates (mean, variance)."""
    exact = [m for m, v in parts if v == 0]
    if exact:
        return float(np.mean(exact)), 0.0
    known = [(m, v) for m, v in parts if np.isfinite(v)]
    if not known:
        return float(np.mean([m for m, _ in parts])), float("inf")
    w = np.array([1 / v for _, v in known])
    return float(np.dot(w, [m for m, _ in known]) / w.sum()), float(1 / w.sum())
