"""Worker faults with real processes: kill -9 mid-job, and two workers on one PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from api.store import Store
from tests.service_helpers import fresh_postgres

TASKS = [{"name": f"digit_{d}", "type": "binary"} for d in (0, 1, 2)]


def taskset(epochs: int) -> dict:
    return {"data": {"builtin": "digits"}, "tasks": TASKS, "model": {"hidden": [16]},
            "probe": {"epochs": epochs, "seeds": 1, "transfer_steps": 10}}


def start_worker(url: str, data_dir) -> subprocess.Popen:
    env = {**os.environ, "TASKAFFINITY_DATABASE_URL": url, "TASKAFFINITY_DATA_DIR": str(data_dir),
           "TASKAFFINITY_LEASE_SECONDS": "2", "TASKAFFINITY_POLL_SECONDS": "0.1",
           "TASKAFFINITY_DEVICE": "cpu"}
    return subprocess.Popen([sys.executable, "-m", "api.cli", "worker"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait(predicate, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise TimeoutError


@pytest.fixture
def store():
    s = Store(fresh_postgres())
    yield s
    s.dispose()


def test_killed_worker_job_is_rerun_and_succeeds(store, tmp_path):
    url = store.engine.url.render_as_string(hide_password=False)
    job = store.add_job("a", taskset(epochs=60))
    first = start_worker(url, tmp_path)
    try:
        wait(lambda: (j := store.get_job("a", job.id)).status == "running" and j.progress > 0)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert store.get_job("a", job.id).status == "running"  # orphaned, lease still valid
    finally:
        first.kill()
    second = start_worker(url, tmp_path)
    try:
        done = wait(lambda: (j := store.get_job("a", job.id)).status in
                    ("succeeded", "failed") and j)
    finally:
        second.kill()
        second.wait(10)
    assert done.status == "succeeded", done.error
    assert done.attempts == 2 and done.result["tasks"] == [t["name"] for t in TASKS]


def test_two_workers_never_run_the_same_job(store, tmp_path):
    url = store.engine.url.render_as_string(hide_password=False)
    ids = [store.add_job("a", taskset(epochs=2)).id for _ in range(6)]
    workers = [start_worker(url, tmp_path) for _ in range(2)]
    try:
        wait(lambda: all(store.get_job("a", i).status == "succeeded" for i in ids), 300)
    finally:
        for w in workers:
            w.kill()
            w.wait(10)
    jobs = [store.get_job("a", i) for i in ids]
    assert all(j.attempts == 1 for j in jobs)  # every job was claimed exactly once
