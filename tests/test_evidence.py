"""``affinity group``: groupings from an affinity matrix or a subset table the user has."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from affinity.cli import main
from affinity.evidence import InvalidEvidence, group, read_evidence
from affinity.grouping.gain import group_gains
from affinity.grouping.select import all_subsets, select_groups

TASKS = ["a", "b", "c", "d", "e"]


def blocks() -> np.ndarray:
    """{a, b, c} and {d, e} help each other; across the blocks they hurt."""
    a = np.full((5, 5), -0.2)
    a[:3, :3] = a[3:, 3:] = 0.3
    np.fill_diagonal(a, 0)
    return a


def subset_table(gain_of, groups) -> pd.DataFrame:
    rows = []
    for g in groups:
        rows.append({TASKS[j]: gain_of(g, j) for j in g})
    return pd.DataFrame(rows, columns=TASKS)


def test_matrix_csv_gives_the_planted_blocks(tmp_path, capsys):
    pd.DataFrame(blocks(), index=TASKS, columns=TASKS).to_csv(tmp_path / "m.csv")
    assert main(["group", str(tmp_path / "m.csv"), "--k", "2", "3", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["k"] for e in entries] == [2, 3]
    assert sorted(map(sorted, entries[0]["groups"])) == [["a", "b", "c"], ["d", "e"]]
    assert entries[0]["rule"] == "0.5"  # no larger subsets to fit a rule to
    assert main(["group", str(tmp_path / "m.csv"), "--k", "2"]) == 0
    assert "k=2: a, b, c | d, e  (predicted total gain" in capsys.readouterr().out


def test_subset_table_fits_the_surrogate_and_keeps_measured_gains():
    truth = blocks()
    pairs = [(t,) for t in range(5)] + list(itertools.combinations(range(5), 2))
    bigger = [(0, 1, 2), (0, 3, 4), (1, 2, 3), (2, 3, 4), (0, 1, 3)]
    frame = subset_table(lambda g, j: group_gains(truth, [g], 0.6)[0, j], pairs + bigger)
    evidence = read_evidence(frame)
    np.testing.assert_allclose(evidence.matrix, truth)
    every = all_subsets(5)
    error = {name: np.nanmean((group_gains(truth, every, rule) - group_gains(truth, every, 0.6))
                              ** 2) for name, rule in (("surrogate", evidence.surrogate()),
                                                       ("sum", "sum"))}
    assert error["surrogate"] < 0.75 * error["sum"]  # the larger subsets taught it shrinkage
    entries = group(frame, [2])
    assert entries[0]["rule"] == "surrogate" and entries[0]["measured_groups"] == 5
    assert sorted(map(sorted, entries[0]["groups"])) == [["a", "b", "c"], ["d", "e"]]


def test_losses_become_gains_over_training_alone(tmp_path, capsys):
    single = np.array([1.0, 2.0, 0.5, 1.5, 1.0])
    pairs = [(t,) for t in range(5)] + list(itertools.combinations(range(5), 2))
    gains = subset_table(lambda g, j: group_gains(blocks(), [g], 1.0)[0, j], pairs)
    losses = subset_table(lambda g, j: single[j] * (1 - group_gains(blocks(), [g], 1.0)[0, j]),
                          pairs)
    losses.to_csv(tmp_path / "losses.csv", index=False)
    np.testing.assert_allclose(read_evidence(losses, loss=True).matrix,
                               read_evidence(gains).matrix)
    assert main(["group", str(tmp_path / "losses.csv"), "--k", "2", "--loss"]) == 0
    assert "a, b, c | d, e" in capsys.readouterr().out


def test_large_evidence_uses_the_pruned_pool():
    rng = np.random.default_rng(0)
    a = rng.normal(scale=0.2, size=(13, 13))
    names = [f"t{i}" for i in range(13)]
    entries = group(pd.DataFrame(a, index=names, columns=names).rename_axis("task")
                    .reset_index(), [3])
    assert entries[0]["method"] == "pruned"
    assert len(entries[0]["groups"]) == 3
    expected = select_groups(a, 3, rule=0.5)
    assert entries[0]["total_predicted_gain"] == pytest.approx(expected.total_gain)


@pytest.mark.parametrize(("frame", "message"), [
    (pd.DataFrame([{"a": 0.0}, {"b": 0.0}], columns=["a", "b"]),
     "evidence: every single task and pair is needed; missing a+b"),
    (pd.DataFrame([{"a": 0.0}, {"a": 0.0}, {"b": 0.0}, {"a": 0.1, "b": 0.1}], columns=["a", "b"]),
     "evidence: row 2 repeats the subset ['a']"),
    (pd.DataFrame([{"a": "x"}], columns=["a", "b"]), "evidence: every cell must be a number"),
])
def test_bad_evidence_names_the_problem(frame, message):
    with pytest.raises(InvalidEvidence, match=message.replace("[", r"\[").replace("+", r"\+")):
        group(frame, [1])


def test_cli_errors_exit_2(tmp_path, capsys):
    pd.DataFrame(blocks(), index=TASKS, columns=TASKS).to_csv(tmp_path / "m.csv")
    assert main(["group", str(tmp_path / "m.csv"), "--k", "6"]) == 2
    assert "invalid evidence: --k: k=6 must be between 1 and the number of tasks (5)" \
        in capsys.readouterr().err
    assert main(["group", str(tmp_path / "m.csv"), "--k", "2", "--loss"]) == 2
    assert main(["group", str(tmp_path / "nope.csv"), "--k", "2"]) == 2
    assert main(["group", str(tmp_path / "m.csv"), "--k", "2", "--rule", "max"]) == 2
