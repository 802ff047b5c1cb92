"""The ``affinity run`` command end to end: files written, result document, exit codes."""

from __future__ import annotations

import csv
import html
import json
import re
import subprocess
import sys

import numpy as np
import pytest

import affinity.analysis
import affinity.cli
from affinity.analysis import analyze
from affinity.cli import main
from affinity.result import Result
from affinity.result_models import GroupingEntry, Meta, Verification
from affinity.taskset import load_taskset
from affinity.verdict import is_the_baseline
from tests.conftest import digits_frame, write_taskset

DOC = {
    "name": "cli-test",
    "data": {"path": "d.csv", "features": [f"pixel_{i}" for i in range(64)]},
    "tasks": [{"name": "zero", "column": "digit_0", "type": "binary"},
              {"name": "label", "type": "multiclass"},
              {"name": "ink", "type": "regression"}],
    "model": {"hidden": [16]},
    "training": {"epochs": 2}, "probe": {"seeds": 2, "transfer_steps": 20},
    "budget": {"training_runs": 1000},  # 2-epoch networks: setup costs more than training
}


def test_run_writes_the_contract_document(tmp_path):
    frame = digits_frame(300)
    frame.loc[::3, "ink"] = np.nan  # labels on part of the rows only
    frame.to_csv(tmp_path / "d.csv", index=False)
    path = write_taskset(tmp_path, DOC)
    proc = subprocess.run([sys.executable, "-m", "affinity.cli", "run", str(path), "--out",
                           str(tmp_path / "out"), "--device", "cpu"],
                          capture_output=True, text=True, cwd=tmp_path / "..")
    assert proc.returncode == 0, proc.stderr
    # progress lines, where the run outlasted the display's first second (which shows
    # nothing): "<stage>: NN% (MM:SS elapsed...)"; the stages themselves are checked through
    # the progress callback (test_progress_reports_stages_up_to_the_total)
    assert all(re.fullmatch(r".+: +\d+% \(\d\d:\d\d elapsed.*\)", line)
               or line.startswith("warning: ") for line in proc.stderr.splitlines()), \
        proc.stderr
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert doc["tasks"] == ["zero", "label", "ink"]
    assert set(doc["affinity"]) == {"grad_cosine", "lookahead", "cka", "transfer", "pairwise"}
    for m in doc["affinity"].values():
        assert np.array(m["matrix"]).shape == np.array(m["std"]).shape == (3, 3)
    assert doc["meta"]["probe_seeds"] == 2 and doc["meta"]["name"] == "cli-test"
    assert doc["meta"]["cost"]["training_runs"] > 0 and doc["verdict"] in proc.stdout
    with open(tmp_path / "out" / "matrices" / "cka.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["source", "zero", "label", "ink"]
    np.testing.assert_allclose(np.array(rows[1][1:], dtype=float),
                               doc["affinity"]["cka"]["matrix"][0], rtol=1e-5)
    report = (tmp_path / "out" / "report.html").read_text()
    assert "<h2>Affinity matrices</h2>" in report and 'alt="lookahead"' in report
    assert report.index(f"<p class=verdict>{html.escape(doc['verdict'])}</p>") < \
        report.index("<h2>Groupings</h2>")  # the verdict leads the report
    assert "data:image/png;base64," in report  # self-contained
    assert (tmp_path / "out" / "figures" / "pairwise.png").stat().st_size > 1000
    assert [g["k"] for g in doc["groupings"]] == [1, 2, 3]
    for entry in doc["groupings"]:
        assert entry["kind"] in ("groups", "all_in_one", "single_task")
        assert len(entry["groups"]) == (entry["k"] if entry["kind"] == "groups" else
                                        1 if entry["kind"] == "all_in_one" else 3)
        assert len(entry["best_groups"]) == entry["k"]
        covered = {t for g in entry["groups"] for t in g}
        assert covered == {"zero", "label", "ink"}
        assert set(entry["measured"]) == covered  # verified: measured loss of every task
        assert entry["baseline"] in ("all_in_one", "single_task")
        # k = 1 or k = T as the baseline itself: nothing to compare
        if is_the_baseline(GroupingEntry(**entry)):
            assert entry["k"] in (1, 3) and entry["improvement"] is None
            continue
        lo, hi = entry["interval"]
        assert lo <= entry["improvement"] <= hi and entry["significant"] == (lo > 0)
    assert [c["task"] for c in doc["auxiliary"]["zero"]] != []
    assert set(doc["auxiliary"]) == {"zero", "label", "ink"}
    # the written document reads back: the same fields, each matrix as a frame
    back = Result.read(tmp_path / "out")
    assert back.to_dict() == doc and Result.read(tmp_path / "out" / "result.json").verdict
    frame = back.frame("cka")
    assert list(frame.index) == list(frame.columns) == ["zero", "label", "ink"]
    assert frame.loc["zero", "label"] == doc["affinity"]["cka"]["matrix"][0][1]
    assert (back.frame("pairwise", "std").to_numpy() == doc["affinity"]["pairwise"]["std"]).all()
    assert back.frame("conflict_rate").shape == (3, 3)  # diagnostics too
    with pytest.raises(KeyError, match="no measure 'nope'"):
        back.frame("nope")
    with pytest.raises(ValueError, match="not a result document"):
        Result.from_dict({"tasks": ["a"]})


def test_failure_inside_the_analysis_exits_1(tmp_path, monkeypatch, capsys):
    digits_frame(100).to_csv(tmp_path / "d.csv", index=False)
    path = write_taskset(tmp_path, DOC)

    def boom(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(affinity.analysis, "analyze", boom)  # the command imports it on use
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 1
    err = capsys.readouterr().err
    log = tmp_path / "o" / "error.log"
    # one line on the screen, naming the error and where its traceback is
    assert err == (f"error: affinity run failed: internal error, RuntimeError: out of memory "
                   f"(traceback in {log})\n")
    assert "Traceback (most recent call last)" in log.read_text() and "boom" in log.read_text()


def test_unusable_device_exits_2(tmp_path, capsys):
    digits_frame(100).to_csv(tmp_path / "d.csv", index=False)
    path = write_taskset(tmp_path, DOC)
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--device", "tpu9"]) == 2
    assert "--device" in capsys.readouterr().err


def test_progress_reports_stages_up_to_the_total(tmp_path):
    digits_frame(200).to_csv(tmp_path / "d.csv", index=False)
    seen: list[tuple[str, int, int]] = []
    analyze(load_taskset(write_taskset(tmp_path, DOC)), base_dir=tmp_path, device="cpu",
            progress=lambda stage, done, total: seen.append((stage, done, total)))
    stages = list(dict.fromkeys(stage for stage, _, _ in seen))
    assert stages[0] == "all-in-one network and affinity samples (seed 1/2)"
    assert stages[-1] == "done" and any(s.startswith("race: ") for s in stages)
    dones = [done for _, done, _ in seen]
    assert dones == sorted(dones) and seen[-1][1] == seen[-1][2] > 0
    # the all-in-one network is one run of work, counted as soon as it ends
    after_first = next(done for stage, done, _ in seen if "single-task" in stage)
    assert after_first == 1.0


def test_run_logs_to_a_local_mlflow_store(tmp_path, monkeypatch):
    """--mlflow: the verdict, each k's improvement and groups, the cost and every output
    file land in one MLflow run (a local file store)."""
    import mlflow  # the mlflow extra, installed by the set-up command
    store = f"file://{tmp_path / 'mlruns'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    digits_frame(300).to_csv(tmp_path / "d.csv", index=False)
    path = write_taskset(tmp_path, DOC)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet", "--device", "cpu",
                 "--mlflow", "--mlflow-experiment", "tests"]) == 0
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    client = mlflow.tracking.MlflowClient(store)
    (run,) = client.search_runs([client.get_experiment_by_name("tests").experiment_id])
    assert run.data.tags["verdict"] == doc["verdict"]
    assert run.data.params["tasks"] == "zero,label,ink" and run.data.params["n_tasks"] == "3"
    for entry in doc["groupings"]:
        if entry["improvement"] is None:  # nothing compared (the baseline itself): no metric
            assert f"improvement_k{entry['k']}" not in run.data.metrics
        else:
            assert run.data.metrics[f"improvement_k{entry['k']}"] == \
                pytest.approx(entry["improvement"])
        assert run.data.tags[f"groups_k{entry['k']}"] == \
            " | ".join(", ".join(g) for g in entry["groups"])
    assert run.data.metrics["training_runs"] == pytest.approx(doc["meta"]["cost"]["training_runs"])
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"result.json", "report.html", "matrices", "figures"} <= files


def test_mlflow_flag_without_mlflow_exits_2(tmp_path, monkeypatch, capsys):
    real = affinity.cli.importlib.util.find_spec
    monkeypatch.setattr(affinity.cli.importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlflow" else real(name, *a))
    digits_frame(120).to_csv(tmp_path / "d.csv", index=False)
    path = write_taskset(tmp_path, DOC)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--mlflow"]) == 2
    assert "pip install 'taskaffinity[mlflow]'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before any training


def test_the_report_keeps_plotting_warnings_from_the_terminal(tmp_path):
    """Long task names and a flat matrix (a dendrogram of zero height) draw without a
    warning reaching the user."""
    import warnings

    from affinity.report import write_report
    from affinity.result import MeasureResult, Result

    tasks = [f"a_rather_long_task_name_number_{i}" for i in range(6)]
    flat = MeasureResult.from_seeds([np.zeros((6, 6))])
    result = Result(tasks=tasks, affinity={"pairwise": flat, "lookahead": flat},
                    meta=Meta(driving_measure="pairwise"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = write_report(result, tmp_path)
    assert 'alt="pairwise"' in path.read_text()


def test_a_recommendation_is_printed_after_the_results_warnings(capsys):
    """run, submit --wait and fetch print a result the same way: its warnings on stderr, then
    the verdict and the table of what to train."""
    result = Result(tasks=["a", "b"], affinity={}, verdict="train every task alone: no "
                    "grouping beats it beyond noise",
                    meta=Meta(warnings=["budget.training_runs: one seed only"]))
    affinity.cli._print_recommendation(result)
    out, err = capsys.readouterr()
    assert err == "warning: budget.training_runs: one seed only\n"
    assert out.startswith("train every task alone: no grouping beats it beyond noise\n")
    assert "what to train for each number of groups k" in out


def test_the_table_shows_the_best_measured_groups_and_the_auxiliary_findings(capsys,
                                                                            monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # a wide terminal: no cell folds
    worse = {"k": 2, "kind": "single_task", "groups": [["a"], ["b"], ["c"]],
             "best_groups": [["a", "b"], ["c"]], "baseline": "single_task",
             "improvement": -0.166, "interval": [-0.188, -0.144], "significant": False,
             "worse_beyond_noise": True, "served_by": {"a": 0, "b": 1, "c": 2}}
    within = {**worse, "k": 3, "kind": "groups", "groups": [["a", "b"], ["c"], ["a"]],
              "best_groups": [["a", "b"], ["c"], ["a"]], "improvement": 0.003,
              "interval": [-0.001, 0.008], "worse_beyond_noise": False}
    result = Result(tasks=["a", "b", "c"], affinity={}, verdict="v",
                    groupings=[GroupingEntry(**worse), GroupingEntry(**within)],
                    verification=Verification.model_validate(
                        {"auxiliary": {"a": {"verdict": "train a with b: its loss drops by 48% "
                                                        "(24% to 72%)"}}}))
    affinity.cli._print_recommendation(result)
    out = capsys.readouterr().out
    assert "best measured groups" in out and "(95%, fresh seeds)" in out
    assert "-16.6% (-18.8% to -14.4%) vs single-task, worse beyond noise" in out
    assert "+0.3% (-0.1% to +0.8%) vs single-task, within noise" in out
    assert "auxiliary, a: train a with b: its loss drops by 48% (24% to 72%)" in out


@pytest.mark.parametrize(("argv", "says"), [
    (["run", "t.yaml", "--out", "o", "--threads", "-1"], "argument --threads: at least 0; got -1"),
    (["exhaustive", "t.yaml", "--out", "o", "--seeds", "0"], "argument --seeds: at least 1; got 0"),
    (["exhaustive", "t.yaml", "--out", "o", "--seeds", "two"],
     "argument --seeds: a whole number; got 'two'"),
])
def test_bad_counts_are_refused_by_name(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and says in capsys.readouterr().err


@pytest.mark.parametrize(("tasks", "says"), [
    ("  - {name: a, column: digit_0, type: ordinal}\n",
     "invalid task set: tasks[0].type: Input should be 'binary', 'multiclass' or 'regression'"),
    ("  - {name: a, column: digit_11, type: binary}\n",
     "invalid task set: tasks[0].column: column 'digit_11' not found in builtin 'digits' "
     "(did you mean 'digit_1'?); its columns: pixel_0, pixel_1, pixel_2, pixel_3, pixel_4, "
     "pixel_5, pixel_6, pixel_7, pixel_8, pixel_9, pixel_10, pixel_11, ... (74 columns)"),
])
def test_an_invalid_task_set_is_refused_before_the_heavy_libraries_load(tmp_path, tasks, says):
    """The document and the data's header are checked first: a refusal loads neither torch
    nor pandas (bench/targets/refusal.py times it)."""
    path = tmp_path / "t.yaml"
    path.write_text("data: {builtin: digits}\ntasks:\n" + tasks
                    + "  - {name: b, column: digit_1, type: binary}\n")
    probe = ("import sys\nfrom affinity.cli import main\n"
             f"code = main(['run', {str(path)!r}, '--out', {str(tmp_path / 'o')!r}])\n"
             "print(code, sorted(m for m in ('torch', 'pandas', 'matplotlib') "
             "if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.stdout.strip() == "2 []", proc.stderr
    assert says in proc.stderr


def test_service_commands_without_the_service_extra_exit_2(monkeypatch, capsys):
    """``serve`` and ``worker`` come from the service's registration (an entry point); without
    FastAPI they say what to install."""
    import api.cli

    real = api.cli.importlib.util.find_spec
    monkeypatch.setattr(api.cli.importlib.util, "find_spec",
                        lambda name, *a: None if name == "fastapi" else real(name, *a))
    assert main(["worker"]) == 2
    assert "affinity worker needs the service: pip install 'taskaffinity[service]'" in \
        capsys.readouterr().err


def test_the_library_never_imports_the_service():
    """Imports flow from ``api`` to ``affinity``, never back (the service's commands are
    registered through an entry point)."""
    import ast
    from pathlib import Path

    root = Path(affinity.cli.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name}: {n}" for n in names if n == "api" or n.startswith("api.")]
    assert found == []
