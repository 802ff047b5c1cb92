"""The worker against a real store: a job runs to a result; failures and cancels are final."""

from __future__ import annotations

import pytest

from api.settings import Settings
from api.store import Store
from api.worker import run_job, work
from tests.service_helpers import store_url

FAST = {"seeds": 1, "transfer_steps": 10}
TASKSET = {"name": "w", "data": {"builtin": "digits"}, "model": {"hidden": [16]},
           "training": {"epochs": 1}, "probe": FAST,
           "tasks": [{"name": f"digit_{d}", "type": "binary"} for d in (0, 1, 2)]}


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, tmp_path):
    return Settings(data_dir=tmp_path, database_url=store_url(request.param, tmp_path),
                    poll_seconds=0.05, device="cpu")


def test_worker_runs_a_job_to_its_result(settings):
    store = Store(settings.url)
    job = store.add_job("a", TASKSET)
    assert work(settings, max_jobs=1) == 1
    done = store.get_job("a", job.id)
    assert done.status == "succeeded", done.error
    assert done.result["tasks"] == ["digit_0", "digit_1", "digit_2"]
    assert len(done.result["groupings"]) == 3
    assert (settings.data_dir / "jobs" / job.id / "report.html").exists()


def test_invalid_data_fails_without_retry(settings):
    store = Store(settings.url)
    job = store.add_job("a", {**TASKSET, "data": {"path": "missing.csv"}})
    work(settings, max_jobs=1)
    failed = store.get_job("a", job.id)
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.error == "invalid task set: data.path: file 'missing.csv' not found"


def test_crash_is_retried_then_failed(settings, monkeypatch, caplog):
    store = Store(settings.url)
    job = store.add_job("a", TASKSET, max_attempts=2)
    monkeypatch.setattr("api.worker.analyze", lambda *a, **k: 1 / 0)
    with caplog.at_level("ERROR", logger="taskaffinity.worker"):
        work(settings, max_jobs=2)
    failed = store.get_job("a", job.id)
    assert failed.status == "failed" and failed.attempts == 2
    # one line in the job's record; the traceback in the worker's log
    assert failed.error == ("internal error, ZeroDivisionError: division by zero (traceback "
                            "in the worker's log)")
    assert "Traceback (most recent call last)" in caplog.text and "1 / 0" in caplog.text


def test_cancel_stops_a_running_job(settings):
    store = Store(settings.url)
    job = store.add_job("a", {**TASKSET, "training": {"epochs": 50, "patience": 50}})
    claimed = store.claim("me", 30)
    store.cancel("a", job.id)  # the job is running: it is asked to stop
    assert run_job(store, settings, claimed, "me").value == "cancelled"
    assert store.get_job("a", job.id).status == "cancelled"
