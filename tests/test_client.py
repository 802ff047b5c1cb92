"""``affinity.client.Client`` and the submit / status / fetch / cancel commands, against the
real app served on loopback with a real worker, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from affinity.cli import main
from affinity.client import Client, ServiceError
from affinity.result import Result
from api.settings import Settings
from tests.conftest import FAST_PROBE, digits_frame, write_taskset
from tests.service_helpers import LiveServer, store_url

TOKEN = "c-secret"


def doc(**extra) -> dict:
    return {"name": "client", "data": {"path": "d.csv", "features": [f"pixel_{i}" for i in
                                                                      range(64)]},
            "model": {"hidden": [16]}, "training": {"epochs": 2, "batch_size": 128},
            "probe": FAST_PROBE, "budget": {"training_runs": 10},
            "tasks": [{"name": "zero", "column": "digit_0", "type": "binary"},
                      {"name": "one", "column": "digit_1", "type": "binary"},
                      {"name": "ink", "type": "regression"}], **extra}


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request, tmp_path):
    settings = Settings(data_dir=tmp_path / "data", database_url=store_url(request.param, tmp_path),
                        poll_seconds=0.05, device="cpu", auth_tokens=f"carol:{TOKEN}")
    with LiveServer(settings, worker_thread=True) as live:
        yield live


@pytest.fixture
def taskset_file(tmp_path):
    """A task set beside its local CSV: the client uploads the file, then submits."""
    digits_frame(300).to_csv(tmp_path / "d.csv", index=False)
    return write_taskset(tmp_path, doc())


def test_client_round_trip(server, taskset_file, tmp_path):
    with Client(server.url, token=TOKEN) as client:
        job = client.submit(taskset_file)
        assert job["status"] == "queued"
        done = client.wait(job, progress=False, poll=0.1, timeout=300)
        assert done["status"] == "succeeded", done["error"]
        assert [j["id"] for j in client.jobs()] == [job["id"]]
        result = client.result(job)
        assert isinstance(result, Result) and result.tasks == ["zero", "one", "ink"]
        assert result.frame("pairwise").shape == (3, 3) and result.verdict
        report = client.report(job["id"], tmp_path / "r.html")
        assert report.read_text().lstrip().lower().startswith("<!doctype html")
        path = client.fetch(job, tmp_path / "out")
        assert Result.read(path).groupings == result.groupings
        assert (tmp_path / "out" / "matrices" / "lookahead.csv").is_file()
        assert (tmp_path / "out" / "report.html").is_file()
        with pytest.raises(ServiceError, match="already succeeded") as info:
            client.cancel(job)
        assert info.value.status == 409


def test_client_errors_name_the_problem(server, tmp_path):
    with Client(server.url, token=TOKEN) as client:
        with pytest.raises(ServiceError) as info:
            client.submit({**doc(), "data": {"builtin": "digits"},
                           "tasks": [{"name": "a", "column": "digit_0", "type": "ordinal"},
                                     {"name": "b", "column": "digit_1", "type": "binary"}]})
        assert info.value.status == 422 and "tasks[0].type" in info.value.detail
        with pytest.raises(ServiceError) as info:
            client.job("job_missing")
        assert info.value.status == 404
    with Client(server.url, token="wrong") as client, pytest.raises(ServiceError) as info:
        client.jobs()
    assert info.value.status == 403
    with Client("http://127.0.0.1:9", token=TOKEN) as client, \
            pytest.raises(ServiceError, match="cannot reach the service") as info:
        client.jobs()
    assert info.value.status == 0


def test_cli_verbs(server, taskset_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TASKAFFINITY_TOKEN", TOKEN)
    url = ["--server", server.url]
    assert main(["submit", str(taskset_file), *url, "--wait"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "\r" not in captured.err  # not a terminal: whole lines, no redrawn frames
    job_id = out.split()[1].rstrip(":")
    assert f"{job_id}  succeeded" in out and "/report" in out
    assert "what to train for each number of groups k" in out and "│ 2 " in out
    assert main(["status", job_id, *url]) == 0
    assert capsys.readouterr().out == f"{job_id}  succeeded  100.0%\n"  # stage = status
    assert main(["fetch", job_id, *url, "--out", str(tmp_path / "got")]) == 0
    fetched = json.loads((tmp_path / "got" / "result.json").read_text())
    assert fetched["tasks"] == ["zero", "one", "ink"]
    printed = capsys.readouterr()
    assert fetched["verdict"] in printed.out
    assert all(f"warning: {w}" in printed.err for w in fetched["meta"]["warnings"])
    assert main(["cancel", job_id, *url]) == 2  # a succeeded job cannot be cancelled
    assert "409: job" in capsys.readouterr().err
    assert main(["status", "job_missing", *url]) == 2
    assert "404" in capsys.readouterr().err
    queued = main(["submit", str(write_taskset(tmp_path, doc(training={"epochs": 300,
                                                                      "patience": 300}),
                                               "slow.json")), *url])
    assert queued == 0
    slow = capsys.readouterr().out.split()[1].rstrip(":")
    assert main(["cancel", slow, *url]) == 0
    assert slow in capsys.readouterr().out
    with Client(server.url) as client:  # the token from TASKAFFINITY_TOKEN
        assert client.wait(slow, progress=False, poll=0.1, timeout=120)["status"] == "cancelled"


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith("affinity ")
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert all(verb in text for verb in ("run", "group", "submit", "status", "fetch", "cancel"))


def test_help_starts_without_the_heavy_libraries():
    """`affinity --help` and the client commands import neither torch nor pandas."""
    import subprocess
    import sys

    code = ("import sys; from affinity.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "import affinity.client\n"
            "print(sorted(m for m in ('torch', 'pandas', 'fastapi') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().endswith("[]")
