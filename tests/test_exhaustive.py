"""Exhaustive ground truth and the scorer: brute-force agreement, round trips, the CLI."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from affinity.cli import main
from affinity.data import load_dataset
from affinity.exhaustive import ExhaustiveTable, exhaustive
from affinity.grouping.select import all_subsets
from affinity.taskset import InvalidTaskSet, parse_taskset
from tests.conftest import write_taskset

DOC = {"data": {"builtin": "digits"},
       "tasks": [{"name": f"digit_{d}", "type": "binary"} for d in (1, 4, 7, 8)],
       "model": {"hidden": [16]}, "training": {"epochs": 2, "batch_size": 256}}


@pytest.fixture(scope="module")
def table() -> ExhaustiveTable:
    ts = parse_taskset(DOC)
    return exhaustive(ts, load_dataset(ts), torch.device("cpu"))


def test_table_has_every_subset_with_its_own_tasks(table):
    assert table.subsets == all_subsets(4) and len(table.subsets) == 15
    for s, row in zip(table.subsets, table.loss, strict=True):
        assert np.isfinite(row[list(s)]).all()
        assert np.isnan(np.delete(row, list(s))).all()
    assert (table.std[~np.isnan(table.std)] >= 0).all()


def test_optimum_matches_brute_force_and_has_no_regret(table):
    names = table.tasks
    for k in (1, 2, 3):
        groups, loss = table.optimum(k)
        brute = min(table.grouping_loss(list(c))
                    for c in itertools.combinations(table.subsets, k)
                    if set().union(*c) == set(range(4)))
        assert loss == pytest.approx(brute)
        assert table.regret(groups) == pytest.approx(0, abs=1e-9)
    assert table.optimum(1)[0] == [names]
    singles = [[t] for t in names]
    assert table.grouping_loss(singles) == pytest.approx(
        sum(table.loss[table.subsets.index((j,)), j] for j in range(4)))
    with pytest.raises(ValueError, match="groups leave tasks uncovered: digit_8"):
        table.grouping_loss([names[:3]])


def test_table_round_trips_through_json(table, tmp_path):
    back = ExhaustiveTable.read(table.write(tmp_path))
    assert back.tasks == table.tasks and back.subsets == table.subsets
    np.testing.assert_allclose(back.loss, table.loss)
    assert (tmp_path / "exhaustive.csv").read_text().splitlines()[0] == \
        "subset,digit_1,digit_4,digit_7,digit_8"


def test_more_than_twelve_tasks_is_refused():
    ts = parse_taskset({"data": {"builtin": "digits"},
                        "tasks": [{"name": f"t{i}", "column": f"digit_{i % 10}",
                                   "type": "binary"} for i in range(13)]})
    with pytest.raises(InvalidTaskSet, match="tasks: exhaustive training supports at most 12"):
        exhaustive(ts, load_dataset(ts), torch.device("cpu"))


def test_cli_exhaustive_then_score(tmp_path, capsys):
    path = write_taskset(tmp_path, DOC)
    assert main(["exhaustive", str(path), "--out", str(tmp_path / "ex"), "--quiet"]) == 0
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["score", str(tmp_path / "ex" / "exhaustive.json"), "--result",
                 str(tmp_path / "run" / "result.json")]) == 0
    out = capsys.readouterr().out
    assert "optimum k=2: total loss" in out and "result k=3: total loss" in out
    run = json.loads((tmp_path / "run" / "result.json").read_text())
    for entry in run["groupings"]:
        line = next(x for x in out.splitlines() if x.startswith(f"result k={entry['k']}:"))
        assert f"against the optimum of {len(entry['groups'])} groups" in line
    assert main(["score", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.startswith("invalid table: cannot read")
    table = str(tmp_path / "ex" / "exhaustive.json")
    assert main(["score", table, "--result", str(tmp_path / "none.json")]) == 2
    assert capsys.readouterr().err.startswith("invalid result: cannot read")
    run["groupings"][0]["groups"] = [["digit_1", "nobody"]]
    (tmp_path / "other.json").write_text(json.dumps(run))
    assert main(["score", table, "--result", str(tmp_path / "other.json")]) == 2
    assert "invalid result: tasks ['nobody'] are not in the table's" in capsys.readouterr().err
