"""Workers: claim queued jobs, run them through the engine, record progress and results.

A job's progress callback doubles as its heartbeat: it extends the lease and learns of a
cancel request, which stops the job within a probe step. A worker that dies leaves a job
whose lease expires; any worker then re-queues it (up to ``max_attempts`` tries).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from pathlib import Path

import torch

from affinity.analysis import analyze
from affinity.errors import crash_line
from affinity.executor import Executor, LocalExecutor
from affinity.report import write_report
from affinity.taskset import InvalidTaskSet
from api.jobs import load_job_data
from api.settings import Settings
from api.store import JobRow, JobStatus, Store

log = logging.getLogger("taskaffinity.worker")
HEARTBEAT_SECONDS = 1.0


class Cancelled(Exception):
    """The job was cancelled (or its lease lost) while it ran."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def make_executor(settings: Settings) -> Executor:
    if settings.executor == "ray":
        from affinity.executor import RayExecutor

        return RayExecutor(settings.ray_address or None)
    return LocalExecutor()


def run_job(store: Store, settings: Settings, job: JobRow, worker: str,
            executor: Executor | None = None) -> JobStatus:
    """Run one claimed job to a final state (or back to the queue on a retryable error)."""
    last = 0.0

    def progress(stage: str, done: float, total: float) -> None:
        nonlocal last
        if time.monotonic() - last < HEARTBEAT_SECONDS and done < total:
            return
        last = time.monotonic()
        if not store.heartbeat(job.id, worker, stage, done / max(total, 1),
                               settings.lease_seconds):
            raise Cancelled(stage)

    try:
        taskset, data = load_job_data(store, settings, job)
        result = analyze(taskset, data=data, device=settings.device, progress=progress,
                         executor=executor)
        out = Path(settings.data_dir) / "jobs" / job.id
        result.write(out)
        write_report(result, out)
    except Cancelled:
        status = JobStatus.cancelled
        store.finish(job.id, worker, status)
        return status
    except InvalidTaskSet as exc:  # the same input fails the same way: no retry
        store.finish(job.id, worker, JobStatus.failed, error=f"invalid task set: {exc}")
        return JobStatus.failed
    except Exception as exc:  # noqa: BLE001 - any failure is recorded on the job
        log.error("job %s failed: %s", job.id, traceback.format_exc())
        retry = job.attempts < job.max_attempts
        status = JobStatus.queued if retry else JobStatus.failed
        store.finish(job.id, worker, status, error=crash_line(exc, "the worker's log"))
        return status
    store.finish(job.id, worker, JobStatus.succeeded, result=result.to_dict(),
                 output_dir=str(out))
    return JobStatus.succeeded


def work(settings: Settings, stop: threading.Event | None = None, *,
         max_jobs: int | None = None) -> int:
    """The worker loop: re-queue expired jobs, claim, run; until ``stop`` is set (or
    ``max_jobs`` ran). Returns the number of jobs run."""
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    store = Store(settings.url, migrate=settings.migrate)
    executor = make_executor(settings)
    worker, ran = worker_name(), 0
    stop = stop or threading.Event()
    try:
        while not stop.is_set() and (max_jobs is None or ran < max_jobs):
            store.requeue_expired()
            job = store.claim(worker, settings.lease_seconds)
            if job is None:
                stop.wait(settings.poll_seconds)
                continue
            log.info("worker %s runs job %s (attempt %d)", worker, job.id, job.attempts)
            run_job(store, settings, job, worker, executor)
            ran += 1
    finally:
        store.dispose()
    return ran
