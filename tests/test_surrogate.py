"""The per-task surrogate of group gains: known answers and a naive ridge reference."""

from __future__ import annotations

import numpy as np
import pytest

from affinity.grouping.gain import fit_beta, group_gains
from affinity.grouping.select import all_subsets, choose_groups, select_groups
from affinity.grouping.surrogate import fit_surrogate


def pair_matrix(n: int, seed: int = 0) -> np.ndarray:
    a = np.random.default_rng(seed).normal(scale=0.1, size=(n, n))
    np.fill_diagonal(a, 0)
    return a


def linear_gains(pairs: np.ndarray, slopes: np.ndarray, groups) -> np.ndarray:
    size = np.array([len(g) for g in groups], dtype=float)[:, None]
    return group_gains(pairs, groups, "sum") + np.where(size > 1, (size - 2) * slopes, 0.0)


def test_gains_with_a_shared_slope_are_recovered_exactly():
    n = 6
    pairs, slopes = pair_matrix(n), np.full(n, -0.04)
    big = [g for g in all_subsets(n) if len(g) >= 3][::7]
    fitted = fit_surrogate(pairs, big, linear_gains(pairs, slopes, big))
    np.testing.assert_allclose(fitted.slopes, slopes, atol=1e-12)
    np.testing.assert_allclose(fitted.weights, pairs, atol=1e-12)
    every = all_subsets(n)
    np.testing.assert_allclose(fitted.predict(every), linear_gains(pairs, slopes, every),
                               atol=1e-12)
    assert np.all(fitted.predict([(t,) for t in range(n)])[np.eye(n, dtype=bool)] == 0)


def test_without_larger_groups_it_is_the_sum_rule():
    pairs = pair_matrix(5)
    fitted = fit_surrogate(pairs, [], np.zeros((0, 5)))
    every = all_subsets(5)
    np.testing.assert_allclose(fitted.predict(every), group_gains(pairs, every, "sum"))


def test_agrees_with_a_naive_ridge_around_the_prior():
    """Per target j: ridge (alpha = 1, no intercept) of y - X @ start on X, plus start."""
    from sklearn.linear_model import Ridge

    n, rng = 5, np.random.default_rng(3)
    pairs = pair_matrix(n, 1)
    big = [(0, 1, 2), (1, 2, 3, 4), (0, 2, 4), (0, 1, 3, 4), (2, 3, 4)]
    gains = np.where(np.isnan(group_gains(pairs, big)), np.nan,
                     rng.normal(scale=0.1, size=(len(big), n)))
    fitted = fit_surrogate(pairs, big, gains)
    residual = gains - group_gains(pairs, big, "sum")
    size = np.array([len(g) - 2.0 for g in big])[:, None] * np.ones((1, n))
    ok = ~np.isnan(residual)
    c0 = (size[ok] @ residual[ok]) / (size[ok] @ size[ok])
    for j in range(n):
        others = [i for i in range(n) if i != j]
        rows = [(np.eye(n)[i][others].tolist() + [0.0], pairs[i, j]) for i in others]
        rows += [([float(i in g) for i in others] + [len(g) - 2.0], gains[b, j])
                 for b, g in enumerate(big) if j in g]
        x, y = np.array([r for r, _ in rows]), np.array([v for _, v in rows])
        start = np.append(pairs[others, j], c0)
        model = Ridge(alpha=1.0, fit_intercept=False).fit(x, y - x @ start)
        np.testing.assert_allclose(fitted.weights[others, j], (model.coef_ + start)[:-1],
                                   atol=1e-10)
        assert fitted.slopes[j] == pytest.approx(model.coef_[-1] + start[-1], abs=1e-10)


def test_task_order_does_not_matter():
    n = 6
    pairs, slopes = pair_matrix(n, 2), np.linspace(-0.08, 0.02, n)
    big = [(0, 1, 2), (2, 3, 4, 5), (0, 3, 5), (1, 2, 4, 5), (0, 1, 2, 3, 4)]
    fitted = fit_surrogate(pairs, big, linear_gains(pairs, slopes, big))
    perm = np.random.default_rng(0).permutation(n)
    where = {int(t): i for i, t in enumerate(perm)}
    big_p = [tuple(sorted(where[t] for t in g)) for g in big]
    gains_p = linear_gains(pairs, slopes, big)[:, perm]
    moved = fit_surrogate(pairs[np.ix_(perm, perm)], big_p, gains_p)
    np.testing.assert_allclose(moved.weights, fitted.weights[np.ix_(perm, perm)], atol=1e-12)
    np.testing.assert_allclose(moved.slopes, fitted.slopes[perm], atol=1e-12)


def test_per_task_slopes_predict_better_than_any_single_beta():
    """Tasks whose partners' gains shrink at different rates: one exponent for all cannot
    follow them; the per-task slopes do, and the selection finds the true optimum."""
    n = 6
    pairs = np.full((n, n), 0.1)
    np.fill_diagonal(pairs, 0)
    slopes = np.array([0.03, 0.03, 0.03, -0.2, -0.2, -0.2])  # 0-2 like crowds, 3-5 do not
    every = all_subsets(n)
    truth = linear_gains(pairs, slopes, every)
    big = [g for g in every if len(g) >= 3][::4]
    measured = linear_gains(pairs, slopes, big)
    fitted = fit_surrogate(pairs, big, measured)
    beta = fit_beta(pairs, big, measured)
    own = np.nanmean((fitted.predict(every) - truth) ** 2)
    rule = np.nanmean((group_gains(pairs, every, beta) - truth) ** 2)
    assert own < rule / 10
    def true_total(groups) -> float:  # each task at its best chosen group, by the truth
        return float(np.nanmax(linear_gains(pairs, slopes, groups), axis=0).sum())

    for k in (2, 3):
        optimum = choose_groups(every, truth, k).total_gain
        assert true_total(select_groups(pairs, k, rule=fitted).groups) == pytest.approx(optimum)
        assert true_total(select_groups(pairs, k, rule=beta).groups) < optimum - 0.05


def test_a_trained_pair_keeps_its_measured_gains():
    """Larger groups that pull the weights away from the pairs (their gains are not the sum
    of pair gains) do not change what a pair, which was measured, predicts."""
    n = 5
    pairs = pair_matrix(n, seed=3)
    big = [g for g in all_subsets(n) if len(g) >= 3]
    fitted = fit_surrogate(pairs, big, linear_gains(pairs, np.zeros(n), big) + 0.05 *
                           np.random.default_rng(1).normal(size=(len(big), n)))
    assert not np.allclose(fitted.weights, pairs, atol=1e-3)
    two = [(i, j) for i in range(n) for j in range(i + 1, n)]
    predicted = fitted.predict(two)
    for row, (i, j) in zip(predicted, two, strict=True):
        assert row[j] == pytest.approx(pairs[i, j]) and row[i] == pytest.approx(pairs[j, i])
