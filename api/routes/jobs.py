"""/v1/jobs: submit task sets, watch them, cancel them, fetch what they produced."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from affinity.taskset import MEASURE_NAMES, InvalidTaskSet
from api.deps import OwnerDep, SettingsDep, StoreDep
from api.errors import TooManyJobs
from api.jobs import resolve
from api.results import ResultCache
from api.schemas import (
    AuxiliaryPublic,
    GroupingPublic,
    JobPublic,
    JobsPublic,
    ResultPublic,
    TaskSetChecked,
)
from api.store import Conflict, JobStatus, NotFound, Store

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
tasksets = APIRouter(prefix="/v1/tasksets", tags=["jobs"])

TASKSET_EXAMPLE = {"name": "digits", "data": {"builtin": "digits"},
                   "tasks": [{"name": "digit_0", "type": "binary"},
                             {"name": "digit_1", "type": "binary"}]}


@router.post("", status_code=202, response_model=JobPublic)
def submit(store: StoreDep, settings: SettingsDep, owner: OwnerDep,
           taskset: Annotated[dict[str, Any], Body(
               description="A task set (see docs/taskset.md); validated, with its data, before it "
                           "is queued", examples=[TASKSET_EXAMPLE])]) -> JobPublic:
    parsed, _ = resolve(store, settings, owner, taskset)
    active = store.count_active(owner)
    if active >= settings.max_active_jobs:
        raise TooManyJobs(f"jobs: {active} queued or running jobs; the limit per owner is "
                          f"{settings.max_active_jobs}")
    job = store.add_job(owner, taskset, dataset_id=parsed.data.dataset,
                        max_attempts=settings.max_attempts)
    return JobPublic.of(job)


@tasksets.post("/check", response_model=TaskSetChecked)
async def check(request: Request, store: StoreDep, settings: SettingsDep,
                owner: OwnerDep) -> TaskSetChecked:
    """Validate a task set, YAML or JSON (any content type), with its data, without queuing
    it; answers the task set as the JSON document ``POST /v1/jobs`` takes (the jobs page
    sends YAML through this)."""
    try:
        doc = yaml.safe_load(await request.body())
    except yaml.YAMLError as exc:
        raise InvalidTaskSet(f"task set: not valid YAML or JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidTaskSet("task set: must be a mapping (YAML or JSON object)")
    parsed, data = await run_in_threadpool(resolve, store, settings, owner, doc)
    return TaskSetChecked(taskset=doc, tasks=parsed.task_names, n_train=len(data.x_train),
                          n_val=len(data.x_val), warnings=list(data.warnings))


@router.get("", response_model=JobsPublic)
def list_jobs(store: StoreDep, owner: OwnerDep, status: JobStatus | None = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 50,
              offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0) -> JobsPublic:
    rows, count = store.list_jobs(owner, status, limit, offset)
    return JobsPublic(data=[JobPublic.of(r) for r in rows], count=count)


@router.get("/{job_id}", response_model=JobPublic)
def get_job(job_id: str, store: StoreDep, owner: OwnerDep) -> JobPublic:
    return JobPublic.of(store.get_job(owner, job_id))


@router.delete("/{job_id}", response_model=JobPublic)
def cancel_job(job_id: str, store: StoreDep, owner: OwnerDep) -> JobPublic:
    """Cancel: a queued job at once, a running one within a few probe steps."""
    return JobPublic.of(store.cancel(owner, job_id))


@dataclass(frozen=True)
class Finished:
    """What a succeeded job produced: its result document and its output folder."""

    result: dict[str, Any]
    output_dir: Path


def finished(store: Store, owner: str, job_id: str) -> Finished:
    job = store.get_job(owner, job_id)
    if job.status != JobStatus.succeeded.value or job.result is None or job.output_dir is None:
        raise Conflict(f"job {job_id!r} is {job.status}; results exist once it succeeded")
    return Finished(job.result, Path(job.output_dir))


@router.get("/{job_id}/result", responses={200: {"model": ResultPublic}})
async def get_result(job_id: str, request: Request, owner: OwnerDep) -> Response:
    """The result document. A succeeded job never changes, so its serialised result is
    cached and served without touching the store or the thread pool."""
    cache: ResultCache = request.app.state.results
    body = cache.get(owner, job_id)
    if body is None:
        job = await run_in_threadpool(finished, request.app.state.store, owner, job_id)
        body = cache.put(owner, job_id, job.result)
    return Response(body, media_type="application/json")


@router.get("/{job_id}/groupings", response_model=list[GroupingPublic])
def get_groupings(job_id: str, store: StoreDep, owner: OwnerDep,
                  k: Annotated[int | None, Query(ge=1)] = None) -> list[dict[str, Any]]:
    groupings = finished(store, owner, job_id).result["groupings"]
    if k is None:
        return groupings
    chosen = [g for g in groupings if g["k"] == k]
    if not chosen:
        raise NotFound(f"k: no grouping for k={k}; budgets are "
                       f"{', '.join(str(g['k']) for g in groupings)}")
    return chosen


@router.get("/{job_id}/auxiliary/{task}", response_model=list[AuxiliaryPublic])
def get_auxiliary(job_id: str, task: str, store: StoreDep,
                  owner: OwnerDep) -> list[dict[str, Any]]:
    auxiliary = finished(store, owner, job_id).result["auxiliary"]
    if task not in auxiliary:
        raise NotFound(f"task: {task!r} is not a primary task of job {job_id!r}")
    return auxiliary[task]


@router.get("/{job_id}/report", response_class=FileResponse,
            responses={200: {"content": {"text/html": {}},
                             "description": "the self-contained HTML report"}})
def get_report(job_id: str, store: StoreDep, owner: OwnerDep) -> FileResponse:
    job = finished(store, owner, job_id)
    return FileResponse(job.output_dir / "report.html", media_type="text/html")


@router.get("/{job_id}/matrices/{measure}.csv", response_class=FileResponse,
            responses={200: {"content": {"text/csv": {}},
                             "description": "source x target matrix, first column the source"}})
def get_matrix(job_id: str, measure: str, store: StoreDep, owner: OwnerDep) -> FileResponse:
    job = finished(store, owner, job_id)
    if measure not in job.result["affinity"] and measure not in job.result["diagnostics"]:
        raise NotFound(f"measure: {measure!r} is not in this result (measures: "
                       f"{', '.join(m for m in MEASURE_NAMES if m in job.result['affinity'])})")
    return FileResponse(job.output_dir / "matrices" / f"{measure}.csv",
                        media_type="text/csv")
