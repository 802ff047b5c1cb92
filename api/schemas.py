"""Response bodies of the REST API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, overload

from pydantic import BaseModel, ConfigDict

from affinity.result_models import GroupingEntry, Meta, Verification
from api.store import DatasetRow, JobRow, JobStatus


@overload
def _aware(moment: datetime) -> datetime: ...
@overload
def _aware(moment: None) -> None: ...
def _aware(moment: datetime | None) -> datetime | None:
    """A stored timestamp in UTC with its zone (SQLite hands them back without one)."""
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


class JobPublic(BaseModel):
    id: str
    name: str | None
    status: JobStatus
    stage: str
    progress: float  # percent
    attempts: int
    error: str | None
    dataset_id: str | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    run_seconds: float | None

    @classmethod
    def of(cls, row: JobRow) -> JobPublic:
        run = ((row.finished_at - row.started_at).total_seconds()
               if row.finished_at and row.started_at else None)
        return cls(id=row.id, name=row.name, status=JobStatus(row.status), stage=row.stage,
                   progress=round(100 * row.progress, 1), attempts=row.attempts,
                   error=row.error, dataset_id=row.dataset_id,
                   cancel_requested=row.cancel_requested, created_at=_aware(row.created_at),
                   started_at=_aware(row.started_at), finished_at=_aware(row.finished_at),
                   run_seconds=run)


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int


class DatasetPublic(BaseModel):
    id: str
    filename: str
    size: int
    n_rows: int
    columns: list[str]
    created_at: datetime

    @classmethod
    def of(cls, row: DatasetRow) -> DatasetPublic:
        return cls(id=row.id, filename=row.filename, size=row.size, n_rows=row.n_rows,
                   columns=row.columns, created_at=_aware(row.created_at))


class DatasetsPublic(BaseModel):
    data: list[DatasetPublic]
    count: int


class BackbonePublic(BaseModel):
    name: str
    options: dict[str, Any]
    """Keyword options (``model.options``; ``hidden`` is ``model.hidden``) and defaults."""
    doc: str


class BackbonesPublic(BaseModel):
    backbones: list[BackbonePublic]


class TaskSetChecked(BaseModel):
    """A task set that passed every check, with its data, and was not queued."""

    taskset: dict[str, Any]
    tasks: list[str]
    n_train: int
    n_val: int
    warnings: list[str]


class _Open(BaseModel):
    """A documented shape whose further fields pass through (results carry more than the
    contract's fields; docs/taskset.md lists them all)."""

    model_config = ConfigDict(extra="allow")


GroupingPublic = GroupingEntry
"""One ``groupings`` entry: what to train for k groups and how it measured."""


class AuxiliaryPublic(_Open):
    """One candidate auxiliary task of a primary task, best first."""

    task: str
    score: float
    std: float | None = None
    harmful: bool | None = None
    selected: bool | None = None


class MeasurePublic(BaseModel):
    matrix: list[list[float | None]]
    std: list[list[float | None]] | None
    """Over seeds; null where one seed was measured (unknown, never 0)."""


class ResultPublic(_Open):
    """The result document (``result.json``)."""

    tasks: list[str]
    verdict: str
    affinity: dict[str, MeasurePublic]
    groupings: list[GroupingEntry]
    auxiliary: dict[str, list[AuxiliaryPublic]]
    verification: Verification | None = None
    meta: Meta
