"""A new user's first job, end to end: four digits tasks, one k, no recipe, the default
budget, through ``affinity run`` and through the service. Its planner once read the
all-in-one network's losses on a fresh seed it never trained on, and crashed every time."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from api.settings import Settings
from tests.conftest import write_taskset
from tests.service_helpers import LiveServer, store_url, wait_for
from tests.test_planner_properties import check_budget

JOB = {"data": {"builtin": "digits"},
       "tasks": [{"name": f"digit_{d}", "type": "binary"} for d in range(4)],
       "grouping": {"budgets": [2]}}


def check(result: dict) -> None:
    """One k = 2 entry that covers every task, a verdict, the budget kept to, and every
    measured loss from seeds the entry names."""
    assert result["tasks"] == [f"digit_{d}" for d in range(4)]
    (entry,) = result["groupings"]
    assert entry["k"] == 2 and result["verdict"]
    assert {t for g in entry["groups"] for t in g} == set(result["tasks"])
    assert entry["measured_seeds"]["all_in_one"] and entry["measured_seeds"]["single_task"]
    check_budget(result["meta"]["cost"])


def test_the_small_job_runs_from_the_command_line(tmp_path):
    path = write_taskset(tmp_path, JOB)
    proc = subprocess.run([sys.executable, "-m", "affinity.cli", "run", str(path), "--out",
                           str(tmp_path / "out"), "--device", "cpu", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    check(result)
    assert result["verdict"] in proc.stdout


@pytest.mark.parametrize("kind", ["sqlite"])
def test_the_small_job_runs_through_the_service(kind, tmp_path):
    settings = Settings(data_dir=tmp_path / "data", database_url=store_url(kind, tmp_path),
                        poll_seconds=0.05, device="cpu")
    with LiveServer(settings, worker_thread=True) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        submitted = client.post("/v1/jobs", json=JOB)
        assert submitted.status_code == 202, submitted.text
        job = wait_for(client, submitted.json()["id"], {"succeeded", "failed"}, timeout=300)
        assert job["status"] == "succeeded", job["error"]
        check(client.get(f"/v1/jobs/{job['id']}/result").json())
