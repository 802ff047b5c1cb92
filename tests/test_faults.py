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
            "training": {"epochs": epochs, "patience": epochs},
            "probe": {"seeds": 1, "transfer_steps": 10}}


def start_worker(url: str, data_dir, lease_seconds: float = 2) -> subprocess.Popen:
    env = {**os.environ, "TASKAFFINITY_DATABASE_URL": url, "TASKAFFINITY_DATA_DIR": str(data_dir),
           "TASKAFFINITY_LEASE_SECONDS": str(lease_seconds), "TASKAFFINITY_POLL_SECONDS": "0.1",
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
    # two workers on 2 cores: a first training step can take 2 s, so a lease of 2 s could
    # expire between heartbeats (a legitimate re-queue, not a double claim)
    workers = [start_worker(url, tmp_path, lease_seconds=6) for _ in range(2)]
    try:
        wait(lambda: all(store.get_job("a", i).status == "succeeded" for i in ids), 300)
    finally:
        for w in workers:
            w.kill()
            w.wait(10)
    jobs = [store.get_job("a", i) for i in ids]
    assert all(j.attempts == 1 for j in jobs)  # every job was claimed exactly once


def _serve(url: str, data_dir, port: int) -> subprocess.Popen:
    env = {**os.environ, "TASKAFFINITY_DATABASE_URL": url, "TASKAFFINITY_DATA_DIR": str(data_dir),
           "TASKAFFINITY_LEASE_SECONDS": "2", "TASKAFFINITY_POLL_SECONDS": "0.1",
           "TASKAFFINITY_DEVICE": "cpu"}
    return subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # its own group: API and worker die together


def test_api_killed_and_restarted_loses_nothing(store, tmp_path):
    import httpx

    from tests.service_helpers import free_port, wait_for

    url, port = store.engine.url.render_as_string(hide_password=False), free_port()
    base = f"http://127.0.0.1:{port}"
    first = _serve(url, tmp_path, port)
    try:
        wait(lambda: _healthy(base))
        with httpx.Client(base_url=base, timeout=30) as client:
            ids = [client.post("/v1/jobs", json=taskset(epochs=e)).json()["id"]
                   for e in (1, 40, 2, 2)]
            done = wait_for(client, ids[0], {"succeeded"})
            before = client.get(f"/v1/jobs/{ids[0]}/result").json()
            wait(lambda: store.get_job(None, ids[1]).status == "running")
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the API and its worker, mid-job
        first.wait(10)
    assert done["status"] == "succeeded"
    second = _serve(url, tmp_path, port)
    try:
        wait(lambda: _healthy(base))
        with httpx.Client(base_url=base, timeout=30) as client:
            final = [wait_for(client, i, {"succeeded", "failed", "cancelled"}, 180) for i in ids]
            assert [j["status"] for j in final] == ["succeeded"] * 4
            assert client.get(f"/v1/jobs/{ids[0]}/result").json() == before  # intact
            assert final[1]["attempts"] == 2  # the killed run was re-queued and run again
    finally:
        os.killpg(second.pid, signal.SIGKILL)
        second.wait(10)


def _healthy(base: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{base}/healthz").status_code == 200
    except httpx.TransportError:
        return False


def _postgres(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
                   check=True, capture_output=True)


def test_database_restart_fails_cleanly_and_recovers(store, tmp_path):
    import httpx

    from api.settings import Settings
    from tests.service_helpers import LiveServer

    url = store.engine.url.render_as_string(hide_password=False)
    settings = Settings(data_dir=tmp_path, database_url=url, device="cpu")
    with LiveServer(settings) as server, httpx.Client(base_url=server.url) as client:
        job_id = client.post("/v1/jobs", json=taskset(epochs=1)).json()["id"]
        _postgres("stop")
        try:
            for path in ("/healthz", "/v1/jobs", f"/v1/jobs/{job_id}"):
                down = client.get(path)
                assert down.status_code == 503, path
                assert down.json() == {"detail": "store unavailable; try again"}
        finally:
            _postgres("start")
        wait(lambda: client.get("/healthz").status_code == 200, 30)  # no restart needed
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"
        assert client.get("/v1/jobs").json()["count"] == 1
