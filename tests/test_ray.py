"""The Ray executor on a local Ray cluster started by the tests (loopback only)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from affinity.analysis import analyze
from affinity.data import load_dataset
from affinity.executor import LocalExecutor, RayExecutor
from affinity.taskset import parse_taskset
from tests.conftest import digits_frame

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")

PIXELS = [f"pixel_{i}" for i in range(64)]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def twenty(tmp_path_factory):
    """20 binary tasks on digits: ten one-vs-rest, nine 'label > d', and parity."""
    folder = tmp_path_factory.mktemp("twenty")
    frame = digits_frame()
    label = frame["label"].str[1:].astype(int)
    tasks = [{"name": f"digit_{d}", "type": "binary"} for d in range(10)]
    for d in range(9):
        frame[f"above_{d}"] = (label > d).astype(int)
        tasks.append({"name": f"above_{d}", "type": "binary"})
    tasks.append({"name": "parity", "type": "binary"})
    frame.to_csv(folder / "d.csv", index=False)
    return parse_taskset({"data": {"path": str(folder / "d.csv"), "features": PIXELS},
                          "tasks": tasks, "model": {"hidden": [16]},
                          "measures": ["pairwise", "cka", "transfer"],
                          "grouping": {"verify": False},  # no race: one subset stage
                          "training": {"epochs": 1},
                          # 1-epoch networks: set-up costs more than training; a budget that
                          # never drops pairs keeps the comparison free of timing
                          "budget": {"training_runs": 1000},
                          "probe": {"seeds": 1, "transfer_steps": 20}})


def test_chunks_run_as_ray_tasks_and_merge_to_the_unsplit_result(cluster, twenty):
    data = load_dataset(twenty)
    executor = RayExecutor(max_chunk_members=64)
    split = analyze(twenty, data=data, device="cpu", executor=executor)
    assert executor.last_chunks == [64, 64, 62]  # the 190 pairs (the 20 singles went first)
    whole = analyze(twenty, data=data, device="cpu", executor=LocalExecutor())
    for name in ("pairwise", "cka", "transfer"):
        np.testing.assert_allclose(split.affinity[name].matrix, whole.affinity[name].matrix,
                                   atol=1e-4, rtol=1e-3, err_msg=name)
    assert [g.groups for g in split.groupings] == [g.groups for g in whole.groupings]


def _chunk_processes() -> list[int]:
    """PIDs of Ray worker processes now running a chunk (Ray titles them by their task)."""
    pids = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if b"ray::_train_chunk" in fh.read():
                    pids.append(int(pid))
        except (OSError, ValueError):
            continue
    return pids


def test_a_killed_ray_worker_is_retried_and_the_job_succeeds(cluster, twenty, tmp_path):
    from api.settings import Settings
    from api.store import Store
    from api.worker import run_job

    slow = twenty.model_copy(
        update={"training": twenty.training.model_copy(update={"epochs": 4})})
    settings = Settings(data_dir=Path(slow.data.path).parent, device="cpu",
                        database_url=f"sqlite:///{tmp_path / 's.db'}")
    store = Store(settings.url)
    job = store.add_job("a", slow.model_dump(mode="json"))
    claimed = store.claim("w", 600)
    thread = threading.Thread(target=run_job, args=(store, settings, claimed, "w",
                                                    RayExecutor(max_chunk_members=30)))
    thread.start()
    deadline = time.monotonic() + 60
    while not (victims := _chunk_processes()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert victims, "no chunk started"
    os.kill(victims[0], signal.SIGKILL)  # the Ray worker process running a chunk
    thread.join(300)
    done = store.get_job("a", job.id)
    assert done.status == "succeeded", done.error
    whole = analyze(slow, data=load_dataset(slow), device="cpu", executor=LocalExecutor())
    np.testing.assert_allclose(done.result["affinity"]["pairwise"]["matrix"],
                               whole.affinity["pairwise"].matrix, atol=1e-4, rtol=1e-3)


def test_api_job_on_the_ray_executor_matches_the_local_executor(cluster, tmp_path):
    import httpx

    from api.settings import Settings
    from tests.service_helpers import LiveServer, wait_for

    doc = {"data": {"builtin": "digits"}, "model": {"hidden": [16]},
           "tasks": [{"name": f"digit_{d}", "type": "binary"} for d in (1, 4, 7, 8)],
           "training": {"epochs": 1}, "probe": {"seeds": 2, "transfer_steps": 20},
           "budget": {"training_runs": 1000},  # which pairs fit follows measured time
           "grouping": {"verify": False}}  # the race's rounds follow measured time
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 's.db'}",
                        executor="ray", device="cpu", poll_seconds=0.05)
    with LiveServer(settings, worker_thread=True) as server, \
            httpx.Client(base_url=server.url) as client:
        job_id = client.post("/v1/jobs", json=doc).json()["id"]
        assert wait_for(client, job_id, {"succeeded", "failed"}, 180)["status"] == "succeeded"
        remote = client.get(f"/v1/jobs/{job_id}/result").json()
    local = analyze(parse_taskset(doc), device="cpu")
    assert [g["groups"] for g in remote["groupings"]] == [g.groups for g in local.groupings]
    np.testing.assert_allclose(remote["affinity"]["pairwise"]["matrix"],
                               local.affinity["pairwise"].matrix, atol=1e-4)
