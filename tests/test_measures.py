"""Measures: properties over the registry, known answers on constructed tasks, CKA identities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affinity.analysis import analyze, evidence, probe_members
from affinity.data import load_dataset
from affinity.measures import MEASURES, linear_cka
from affinity.measures.base import ProbeRun
from affinity.measures.pairwise import pairwise_gain
from affinity.plan import Ledger
from affinity.probes.joint import JointProbe
from affinity.probes.subsets import run_subsets
from affinity.taskset import parse_taskset
from bench.naive import naive_subsets
from tests.conftest import digits_frame

PIXELS = [f"pixel_{i}" for i in range(64)]


@pytest.fixture(scope="module")
def constructed(tmp_path_factory):
    """Digits tasks plus a duplicate of 'eight' under another name and a random-label task."""
    folder = tmp_path_factory.mktemp("constructed")
    frame = digits_frame()
    frame["noise"] = np.random.default_rng(0).integers(0, 2, len(frame))
    frame.to_csv(folder / "d.csv", index=False)
    tasks = [("three", "digit_3"), ("five", "digit_5"), ("eight", "digit_8"),
             ("twin", "digit_8"), ("parity", "parity"), ("noise", "noise")]
    doc = {"data": {"path": str(folder / "d.csv"), "features": PIXELS},
           "tasks": [{"name": n, "column": c, "type": "binary"} for n, c in tasks],
           "model": {"hidden": [64, 32]},
           "training": {"epochs": 4, "batch_size": 64},
           "budget": {"training_runs": 1000},  # every pair, whatever the machine's speed
           "probe": {"seeds": 2, "transfer_steps": 50}}
    return doc, analyze(parse_taskset(doc), device="cpu")


def strongest_partner(matrix: np.ndarray, target: int) -> int:
    column = matrix[:, target].copy()
    column[target] = -np.inf
    return int(np.argmax(column))


@pytest.mark.parametrize("measure", list(MEASURES))
def test_duplicated_task_is_its_twins_strongest_partner(constructed, measure):
    _, result = constructed
    eight, twin = result.tasks.index("eight"), result.tasks.index("twin")
    matrix = result.affinity[measure].matrix
    assert strongest_partner(matrix, eight) == twin
    assert strongest_partner(matrix, twin) == eight


@pytest.mark.parametrize("measure", ["lookahead", "grad_cosine", "pairwise"])
def test_random_label_task_helps_no_one(constructed, measure):
    _, result = constructed
    noise = result.tasks.index("noise")
    row = np.delete(result.affinity[measure].matrix[noise], noise)
    assert row.max() <= 0.02


def test_matrices_have_the_documented_shape_and_diagonals(constructed):
    _, result = constructed
    n = len(result.tasks)
    for name, m in result.affinity.items():
        assert m.matrix.shape == m.std.shape == (n, n), name
        assert np.isfinite(m.matrix).all() and (m.std >= 0).all(), name
    for name in ("grad_cosine", "cka"):
        m = result.affinity[name].matrix
        np.testing.assert_allclose(m, m.T, atol=1e-6)
        np.testing.assert_allclose(np.diag(m), 1, atol=1e-6)
    np.testing.assert_array_equal(np.diag(result.affinity["pairwise"].matrix), 0)
    assert (np.diag(result.affinity["lookahead"].matrix) > 0).all()  # own step lowers own loss
    rate = result.diagnostics["conflict_rate"].matrix
    assert ((rate >= 0) & (rate <= 1)).all() and (np.diag(rate) == 0).all()


def test_permuting_tasks_permutes_every_matrix(constructed):
    doc, result = constructed
    order = [4, 0, 5, 2, 1, 3]
    permuted = dict(doc, tasks=[doc["tasks"][i] for i in order],
                    probe=dict(doc["probe"], seeds=1))
    base = analyze(parse_taskset(dict(doc, probe=dict(doc["probe"], seeds=1))), device="cpu")
    other = analyze(parse_taskset(permuted), device="cpu")
    assert other.tasks == [result.tasks[i] for i in order]
    for name in MEASURES:
        np.testing.assert_allclose(other.affinity[name].matrix,
                                   base.affinity[name].matrix[np.ix_(order, order)],
                                   atol=2e-3, rtol=1e-2, err_msg=name)


def test_pairwise_measure_agrees_with_naive_training(tmp_path, device):
    frame = digits_frame(400)
    frame.to_csv(tmp_path / "d.csv", index=False)
    ts = parse_taskset({"data": {"path": str(tmp_path / "d.csv"), "features": PIXELS},
                        "tasks": [{"name": f"d{d}", "column": f"digit_{d}", "type": "binary"}
                                  for d in (1, 4, 7)],
                        "model": {"hidden": [16]}, "training": {"epochs": 2, "batch_size": 64}})
    data = load_dataset(ts).to(device)
    members = probe_members({"pairs"}, 3)
    run = ProbeRun(ts, data, 0, None, run_subsets(ts, data, members, 0, device))
    loss = naive_subsets(ts, data, members, 0, device)
    expected = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            if i != j:
                alone = loss[members.index((j,)), j]
                expected[i, j] = (alone - loss[members.index(tuple(sorted((i, j)))), j]) / alone
    np.testing.assert_allclose(pairwise_gain(run), expected, rtol=1e-3, atol=1e-5)
    # without the pair (1, 2): each of its gains is the mean of its target's trained pairs
    some = run_subsets(ts, data, [m for m in members if m != (1, 2)], 0, device)
    partial = pairwise_gain(ProbeRun(ts, data, 0, None, some))
    assert partial[1, 2] == pytest.approx(partial[0, 2]) and partial[2, 1] == \
        pytest.approx(partial[0, 1])
    np.testing.assert_allclose(partial[1:, 0], expected[1:, 0], rtol=1e-3, atol=1e-5)


def test_a_tight_budget_trains_the_best_ranked_pairs_and_no_larger_group():
    """The joint run ranks pair (0, 1) first, (2, 3) second: with room for two more
    networks beside the singles, those two pairs are trained; sampled groups go first."""
    n = 4
    cos = np.zeros((n, n))
    look = np.zeros((n, n))
    cos[0, 1] = cos[1, 0] = 0.9
    look[0, 1] = 0.5
    cos[2, 3] = 0.5
    look[3, 2] = 0.4
    joint = JointProbe(cos, cos * 0, look, 1, np.zeros(n), 1, 1.0, 1)
    members = probe_members({"pairs"}, n, sampled=2)
    assert len(members) == 4 + 6 + 2
    ledger = Ledger(100, 10, lambda groups: [100] * len(groups), (0, 1, 2, 3))
    ledger.set_unit(steps=100, epochs=10)  # every network: 10 epochs of 10 steps, 1 run
    wanted = members[n:]
    assert evidence(wanted, ledger, 2.5, joint) == [(0, 1), (2, 3)]
    assert evidence(wanted, ledger, 0.5, joint) == []
    assert evidence(wanted, ledger, 8, joint) == wanted


def naive_cka(x: np.ndarray, y: np.ndarray) -> float:
    """HSIC form with the centring matrix H: tr(K H L H) / sqrt(tr(K H K H) tr(L H L H))."""
    n = len(x)
    h = np.eye(n) - 1 / n
    k, l_ = x @ x.T, y @ y.T
    hsic = lambda a, b: np.trace(a @ h @ b @ h)  # noqa: E731
    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


def test_linear_cka_identities():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 16, generator=gen)
    rotation, _ = torch.linalg.qr(torch.randn(16, 16, generator=gen))
    reps = torch.stack([x, x @ rotation, 3.7 * x + 2.0, torch.randn(2000, 16, generator=gen)])
    cka = linear_cka(reps)
    np.testing.assert_allclose(cka[0, :3].numpy(), 1, atol=1e-6)  # itself, rotated, scaled
    assert cka[0, 3] < 0.02  # independent noise
    np.testing.assert_allclose(cka.numpy(), cka.numpy().T)


def test_linear_cka_agrees_with_hsic_reference():
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(200, 8, generator=gen)
    b = a @ torch.randn(8, 5, generator=gen) + 0.5 * torch.randn(200, 5, generator=gen)
    b = torch.nn.functional.pad(b, (0, 3))  # widths must match to stack; zero columns are inert
    got = linear_cka(torch.stack([a, b]))[0, 1].item()
    assert got == pytest.approx(naive_cka(a.double().numpy(), b.double().numpy()), rel=1e-9)


def test_a_run_whose_pairs_do_not_fit_says_which_were_left_out(tmp_path):
    frame = digits_frame(600)
    frame.to_csv(tmp_path / "d.csv", index=False)
    ts = parse_taskset({"data": {"path": str(tmp_path / "d.csv"), "features": PIXELS},
                        "tasks": [{"name": f"d{d}", "column": f"digit_{d}", "type": "binary"}
                                  for d in range(6)],
                        "model": {"hidden": [16]}, "training": {"epochs": 5},
                        "budget": {"training_runs": 30.0}, "probe": {"transfer_steps": 20}})
    result = analyze(ts, device="cpu")
    untrained = result.meta.untrained_pairs
    assert 0 < len(untrained) < 15
    # said where the result is read, with the budget that would measure them
    (said,) = [w for w in result.meta.warnings if w.startswith("pairwise: ")]
    assert said.startswith(f"pairwise: {len(untrained)} of 15 pairs were not trained")
    more = int(said.rsplit("budget.training_runs: ", 1)[1].split()[0])
    assert more > 30
    assert np.isfinite(result.affinity["pairwise"].matrix).all()
    assert [e.k for e in result.groupings] == [1, 2, 3]
    # each entry names the pairs inside its groups that were never trained
    left_out = {frozenset(p) for p in untrained}
    for e in result.groupings:
        inside = {frozenset((a, b)) for g in e.groups for i, a in enumerate(g) for b in g[i + 1:]}
        assert e.evidence == "measured" and {frozenset(p) for p in e.unmeasured_pairs} <= \
            inside & left_out
