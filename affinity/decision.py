"""A decision is not a claim.

``decide`` picks, for one contest (the groups for a k, or a primary's auxiliary set), the
option of the lowest expected loss given all the evidence: every candidate the race measured
and the baselines, on the same footing. Its estimates are relative drops of the total loss
against a reference baseline, paired by seed over the networks in which the two differ.

- Seeds that did not choose an option (a baseline's every seed; a candidate's fresh seeds)
  give unbiased estimates, used as they are.
- The seeds that chose a candidate (the race's) flatter the winner among many (the winner's
  curse). Their estimates are shrunk by empirical Bayes over the candidates raced (normal
  effects, Morris 1983): each towards the candidates' precision-weighted mean by the share
  of its variance in the spread of the means, the uncertainty of that mean added to its
  variance (``stats.shrink``).
- Estimates from both are combined by precision.

``claim`` is the other half: an improvement and its interval, from the seeds that did not
choose what it describes (``stats.compare`` on the fresh seeds). A recommendation need not be
beyond noise; the verdict says when it is not.

Assumptions: a seed-paired difference's variance is what the networks' own seed-to-seed
spread predicts (``stats.network_prior``), else the difference's own variance over its seeds,
else the median of the contest's other options; differences are roughly normal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from affinity.race import Candidate, Contest, Measurements, comparable_on
from affinity.stats import Comparison, combine, compare, differences, network_prior, shrink


@dataclass(frozen=True)
class Expected:
    """An option's expected relative drop of the total loss against the reference, the
    variance of that estimate, and the seeds behind it (the race's, the fresh ones)."""

    option: Candidate
    gain: float
    variance: float
    selection_seeds: tuple[int, ...] = ()
    fresh_seeds: tuple[int, ...] = ()


def expected_gains(measured: Measurements, contest: Contest, reference: Candidate,
                   selection: Sequence[int], confirmation: Sequence[int]) -> list[Expected]:
    """Every measured option of ``contest`` (the candidates it entered, then its baselines)
    with its expected gain over ``reference`` (see the module docstring); the reference
    first, at 0. A candidate that is the reference's groups is the reference; one that is
    the other baseline's is listed after it, at the same estimate (a tie goes to the
    baseline)."""
    seeds = [*selection, *confirmation]
    out = [Expected(reference, 0.0, 0.0)]
    for base in contest.baselines:
        if base.groups == reference.groups:
            continue
        on = comparable_on(measured, base, reference, seeds, seeds)
        if on:
            d = differences(measured, base, reference, on, seeds)
            out.append(Expected(base, float(d.mean()), _variance(measured, base, reference, on,
                                                                 seeds, d) / len(d),
                                tuple(s for s in on if s in selection),
                                tuple(s for s in on if s in confirmation)))
    raced: list[tuple[Candidate, np.ndarray, float, list[int], list[int]]] = []
    for c in contest.entered:
        serve = measured.chosen_on(c, selection, confirmation)
        if c.groups == reference.groups or not measured.can_serve(c, serve):
            continue
        chose = comparable_on(measured, c, reference, selection, serve)
        fresh = comparable_on(measured, c, reference, confirmation, serve)
        if not chose and not fresh:
            continue
        d = differences(measured, c, reference, [*chose, *fresh], serve)
        var = _variance(measured, c, reference, [*chose, *fresh], serve, d)
        raced.append((c, d, var, chose, fresh))
    variances = [v for v in [r[2] for r in raced] +
                 [e.variance * (len(e.selection_seeds) + len(e.fresh_seeds)) for e in out[1:]]
                 if np.isfinite(v)]
    fill = float(np.median(variances)) if variances else float("inf")
    shrunk = shrink([(d[:len(chose)], v if np.isfinite(v) else fill)
                      for _, d, v, chose, _ in raced])
    for (c, d, v, chose, fresh), prior in zip(raced, shrunk, strict=True):
        v = v if np.isfinite(v) else fill
        parts = [prior] if chose else []
        if fresh:
            parts.append((float(d[len(chose):].mean()), v / len(fresh)))
        gain, variance = combine(parts)
        out.append(Expected(c, gain, variance, tuple(chose), tuple(fresh)))
    return out


def decide(options: Sequence[Expected]) -> Expected:
    """The option of the highest expected gain (the lowest expected loss); on a tie, the
    first (the reference, then the other baselines)."""
    return max(options, key=lambda e: e.gain)


def claim(measured: Measurements, option: Candidate, baseline: Candidate,
          confirmation: Sequence[int], serve_on: Sequence[int],
          confidence: float = 0.95) -> Comparison | None:
    """The option against the baseline on the fresh ``confirmation`` seeds that trained
    every network in which they differ (none chose either), its variance moderated by the
    networks' own seed-to-seed spread, so that one fresh seed gives an interval where every
    network has trained on two seeds; None with no such seed, or where the option is the
    baseline."""
    if option.groups == baseline.groups:
        return None
    serve = measured.chosen_on(option, serve_on, confirmation)
    fresh = comparable_on(measured, option, baseline, confirmation, serve)
    if not fresh:
        return None
    return compare(measured, option, baseline, fresh,
                   network_prior(measured, option, baseline, fresh, serve), confidence,
                   serve_on=serve)


def _variance(measured: Measurements, option: Candidate, reference: Candidate,
              seeds: Sequence[int], serve: Sequence[int], d: np.ndarray) -> float:
    """The variance of one seed's difference: the networks' own spread, else the
    differences' own over two seeds or more, else unknown (inf)."""
    prior = network_prior(measured, option, reference, seeds, serve)
    if prior is not None:
        return prior.variance
    return float(d.var(ddof=1)) if len(d) > 1 else float("inf")
