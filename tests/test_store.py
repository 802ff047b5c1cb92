"""The job store on SQLite and on PostgreSQL over a real connection."""

from __future__ import annotations

import threading
import time

import pytest

from api.store import Conflict, JobStatus, NotFound, Store
from tests.service_helpers import store_url

TASKSET = {"name": "t", "data": {"builtin": "digits"},
           "tasks": [{"name": "digit_0", "type": "binary"}, {"name": "digit_1", "type": "binary"}]}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = store_url(request.param, tmp_path)
    s = Store(url)
    yield s
    s.dispose()


def test_job_life_cycle_and_terminal_states(store):
    job = store.add_job("alice", TASKSET)
    assert job.status == "queued" and job.id.startswith("job_")
    claimed = store.claim("w1", lease_seconds=30)
    assert claimed.id == job.id and claimed.status == "running" and claimed.attempts == 1
    assert store.claim("w2", lease_seconds=30) is None  # nothing else queued
    assert store.heartbeat(job.id, "w1", "joint probe", 0.5, 30)
    assert not store.heartbeat(job.id, "w2", "joint probe", 0.5, 30)  # not its job
    assert store.finish(job.id, "w1", JobStatus.succeeded, result={"tasks": ["a"]})
    done = store.get_job("alice", job.id)
    assert done.status == "succeeded" and done.result == {"tasks": ["a"]} and done.progress == 1
    # terminal: no worker can move it again, and cancelling is refused
    assert not store.finish(job.id, "w1", JobStatus.failed, error="late")
    with pytest.raises(Conflict, match="already succeeded"):
        store.cancel("alice", job.id)
    assert store.get_job(None, job.id).status == "succeeded"


def test_owners_do_not_see_each_others_jobs(store):
    job = store.add_job("alice", TASKSET)
    with pytest.raises(NotFound, match=f"job '{job.id}' not found"):
        store.get_job("bob", job.id)
    assert store.list_jobs("bob") == ([], 0)
    rows, count = store.list_jobs("alice")
    assert count == 1 and rows[0].id == job.id


def test_cancel_queued_and_running(store):
    queued = store.add_job("a", TASKSET)
    assert store.cancel("a", queued.id).status == "cancelled"
    running = store.add_job("a", TASKSET)
    store.claim("w", 30)
    assert store.cancel("a", running.id).cancel_requested
    assert not store.heartbeat(running.id, "w", "x", 0.1, 30)  # the worker is told to stop
    store.finish(running.id, "w", JobStatus.cancelled)
    assert store.get_job("a", running.id).status == "cancelled"


def test_expired_lease_requeues_then_fails_after_max_attempts(store):
    job = store.add_job("a", TASKSET, max_attempts=2)
    store.claim("w1", lease_seconds=0.01)
    time.sleep(0.05)
    assert store.requeue_expired() == 1
    assert store.get_job("a", job.id).status == "queued"
    store.claim("w2", lease_seconds=0.01)
    assert not store.finish(job.id, "w1", JobStatus.succeeded)  # the lost worker can't finish
    time.sleep(0.05)
    store.requeue_expired()
    failed = store.get_job("a", job.id)
    assert failed.status == "failed" and failed.attempts == 2 and "lease expired" in failed.error


def test_concurrent_claims_never_share_a_job(store):
    ids = {store.add_job("a", TASKSET).id for _ in range(20)}
    got: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (job := store.claim(name, 30)) is not None:
            with lock:
                got.append(job.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(ids)  # each job claimed exactly once


def test_dataset_delete_refused_while_a_job_uses_it(store):
    ds = store.add_dataset("a", "d.csv", "/x/d.csv", 10, 5, ["x", "y"])
    job = store.add_job("a", {**TASKSET, "data": {"dataset": ds.id}}, dataset_id=ds.id)
    with pytest.raises(Conflict, match="is used by 1 queued or running job"):
        store.delete_dataset("a", ds.id)
    with pytest.raises(NotFound):
        store.delete_dataset("b", ds.id)
    store.cancel("a", job.id)
    store.delete_dataset("a", ds.id)
    assert store.list_datasets("a") == []


def test_data_survives_a_new_store_on_the_same_database(store):
    job = store.add_job("a", TASKSET)
    url = store.engine.url.render_as_string(hide_password=False)
    store.dispose()
    again = Store(url)
    assert again.get_job("a", job.id).taskset == TASKSET
    assert again.migrate() == "0001"  # already at the newest revision
    again.dispose()
