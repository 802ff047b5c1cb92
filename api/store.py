"""The persistent store of datasets and jobs (SQLAlchemy 2: SQLite file or PostgreSQL).

Job states move queued -> running -> succeeded | failed | cancelled; a running job may go
back to queued when its worker's lease expires. The store refuses to move a job out of a
terminal state. Claiming a job is a compare-and-set (``UPDATE ... WHERE status = 'queued'``)
so no job is ever run by two workers at once.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql.dml import Update


class JobStatus(str, Enum):  # noqa: UP042  # str() stays the member name: StrEnum would change it
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    def is_terminal(self) -> bool:
        return self in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


ACTIVE = (JobStatus.queued.value, JobStatus.running.value)


class NotFound(LookupError):
    """No such job or dataset (for this owner)."""


class Conflict(RuntimeError):
    """The request conflicts with the object's state."""


def now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class DatasetRow(Base):
    __tablename__ = "datasets"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    filename: Mapped[str] = mapped_column(String(300))
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    n_rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class JobRow(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    taskset: Mapped[dict] = mapped_column(JSON)
    dataset_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(20), index=True, default=JobStatus.queued.value)
    stage: Mapped[str] = mapped_column(String(200), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now,
                                                 index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    output_dir: Mapped[str | None] = mapped_column(Text, nullable=True)


MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LEGACY_TABLE = "schema_version"
"""How releases before Alembic versioned the schema (their version 1 is revision 0001)."""
MIGRATION_LOCK = 7_350_001  # PostgreSQL advisory lock: one process migrates at a time


class StoreOutdated(RuntimeError):
    """The store's schema is older than this release's and migrating was not allowed."""


def _current_revision(conn: Connection) -> str | None:
    """The store's revision, read without alembic's INFO lines: every process that opens the
    store reads it, and only an upgrade is news."""
    migration_log = logging.getLogger("alembic.runtime.migration")
    level = migration_log.level
    migration_log.setLevel(logging.WARNING)
    try:
        return MigrationContext.configure(conn).get_current_revision()
    finally:
        migration_log.setLevel(level)


def _alembic(connection: Connection | None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _changed(session: Session, statement: Update) -> int:
    """Run an UPDATE; the number of rows it changed."""
    return cast(CursorResult, session.execute(statement)).rowcount


class Store:
    """All reads and writes of datasets and jobs; each call is one transaction.

    On opening, the schema is brought to this release's (Alembic, ``api/migrations``), or,
    with ``migrate=False``, StoreOutdated is raised when it is behind."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        sqlite = url.startswith("sqlite")
        self.engine = create_engine(url, pool_pre_ping=True,
                                    connect_args={"timeout": 30} if sqlite else {})
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.session = sessionmaker(self.engine, expire_on_commit=False)
        self.migrate(apply=migrate)

    def migrate(self, *, apply: bool = True) -> str:
        """Bring the schema to the newest revision (a store made before Alembic is adopted
        as revision 0001, its jobs and results as they are); return the revision."""
        head = ScriptDirectory.from_config(_alembic(None)).get_current_head() or ""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            tables = set(inspect(conn).get_table_names())
            legacy = LEGACY_TABLE in tables and "alembic_version" not in tables
            current = _current_revision(conn)
            if current == head:
                return head
            if not apply:
                at = ("0001, versioned by the table schema_version of releases before "
                      "Alembic" if legacy else current or "none (an empty database)")
                raise StoreOutdated(
                    f"store: the schema is at revision {at}; this release needs {head}. Start "
                    "with TASKAFFINITY_MIGRATE=true to upgrade it in place (jobs and results "
                    "are kept)")
            config = _alembic(conn)
            if legacy:
                command.stamp(config, "0001")
                conn.execute(text(f"DROP TABLE {LEGACY_TABLE}"))
            command.upgrade(config, "head")
        return head

    def dispose(self) -> None:
        self.engine.dispose()

    def _add(self, row: Any) -> Any:
        with self.session.begin() as s:
            s.add(row)
        return row

    def _owned(self, model: type, owner: str | None, key: str, kind: str) -> Any:
        """The row of ``key``; NotFound when it is missing or belongs to another owner."""
        with self.session() as s:
            row = s.get(model, key)
        if row is None or (owner is not None and row.owner != owner):
            raise NotFound(f"{kind} {key!r} not found")
        return row

    # datasets -----------------------------------------------------------------------------
    def add_dataset(self, owner: str, filename: str, path: str, size: int, n_rows: int,
                    columns: list[str], dataset_id: str | None = None) -> DatasetRow:
        return self._add(DatasetRow(id=dataset_id or new_id("ds"), owner=owner,
                                    filename=filename, path=path, size=size, n_rows=n_rows,
                                    columns=columns, created_at=now()))

    def get_dataset(self, owner: str | None, dataset_id: str) -> DatasetRow:
        return self._owned(DatasetRow, owner, dataset_id, "dataset")

    def list_datasets(self, owner: str | None) -> list[DatasetRow]:
        query = select(DatasetRow).order_by(DatasetRow.created_at)
        if owner is not None:
            query = query.where(DatasetRow.owner == owner)
        with self.session() as s:
            return list(s.scalars(query))

    def delete_dataset(self, owner: str | None, dataset_id: str) -> DatasetRow:
        with self.session.begin() as s:
            row = s.get(DatasetRow, dataset_id, with_for_update=True)
            if row is None or (owner is not None and row.owner != owner):
                raise NotFound(f"dataset {dataset_id!r} not found")
            busy = s.scalar(select(func.count()).select_from(JobRow).where(
                JobRow.dataset_id == dataset_id, JobRow.status.in_(ACTIVE)))
            if busy:
                raise Conflict(f"dataset {dataset_id!r} is used by {busy} queued or running "
                               "job(s)")
            s.delete(row)
        return row

    # jobs ---------------------------------------------------------------------------------
    def add_job(self, owner: str, taskset: dict[str, Any], *, dataset_id: str | None = None,
                max_attempts: int = 3) -> JobRow:
        return self._add(JobRow(id=new_id("job"), owner=owner, name=taskset.get("name"),
                                taskset=taskset, dataset_id=dataset_id,
                                status=JobStatus.queued.value, stage="queued", progress=0.0,
                                attempts=0, max_attempts=max_attempts, cancel_requested=False,
                                created_at=now()))

    def get_job(self, owner: str | None, job_id: str) -> JobRow:
        return self._owned(JobRow, owner, job_id, "job")

    def list_jobs(self, owner: str | None, status: JobStatus | None = None, limit: int = 50,
                  offset: int = 0) -> tuple[list[JobRow], int]:
        query = select(JobRow)
        if owner is not None:
            query = query.where(JobRow.owner == owner)
        if status is not None:
            query = query.where(JobRow.status == status.value)
        with self.session() as s:
            count = s.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = s.scalars(query.order_by(JobRow.created_at.desc(), JobRow.id)
                             .limit(limit).offset(offset))
            return list(rows), count

    def count_active(self, owner: str) -> int:
        """Queued plus running jobs of ``owner``."""
        with self.session() as s:
            return s.scalar(select(func.count()).select_from(JobRow).where(
                JobRow.owner == owner, JobRow.status.in_(ACTIVE))) or 0

    def count_by_status(self) -> dict[str, int]:
        with self.session() as s:
            rows = s.execute(select(JobRow.status, func.count()).group_by(JobRow.status))
            return {status: n for status, n in rows}

    def run_durations(self) -> list[float]:
        """Seconds from start to finish of every finished job."""
        with self.session() as s:
            rows = s.execute(select(JobRow.started_at, JobRow.finished_at).where(
                JobRow.started_at.is_not(None), JobRow.finished_at.is_not(None)))
            return [(end - start).total_seconds() for start, end in rows if start and end]

    def claim(self, worker: str, lease_seconds: float) -> JobRow | None:
        """Atomically take the oldest queued job, or return None."""
        for _ in range(5):  # another worker may win the race for a candidate: try the next
            with self.session.begin() as s:
                job_id = s.scalar(select(JobRow.id).where(JobRow.status == "queued")
                                  .order_by(JobRow.created_at, JobRow.id).limit(1))
                if job_id is None:
                    return None
                t = now()
                won = _changed(s, update(JobRow).where(
                    JobRow.id == job_id, JobRow.status == "queued").values(
                    status="running", worker=worker, stage="starting",
                    attempts=JobRow.attempts + 1, started_at=t, error=None,
                    lease_until=t + timedelta(seconds=lease_seconds)))
            if won:
                return self.get_job(None, job_id)
        return None

    def heartbeat(self, job_id: str, worker: str, stage: str, progress: float,
                  lease_seconds: float) -> bool:
        """Record progress and extend the lease; False when the job should stop (cancel
        requested, or the lease was lost to another worker)."""
        with self.session.begin() as s:
            updated = _changed(s, update(JobRow).where(
                JobRow.id == job_id, JobRow.worker == worker, JobRow.status == "running",
                JobRow.cancel_requested.is_(False)).values(
                stage=stage[:200], progress=progress,
                lease_until=now() + timedelta(seconds=lease_seconds)))
        return bool(updated)

    def finish(self, job_id: str, worker: str, status: JobStatus, *,
               result: dict[str, Any] | None = None, error: str | None = None,
               output_dir: str | None = None) -> bool:
        """Move a running job of this worker to a terminal state (or back to queued)."""
        values: dict[str, Any] = {"status": status.value, "error": error, "lease_until": None}
        if status.is_terminal():
            values.update(finished_at=now(), stage=status.value)
        else:
            values.update(stage="queued", worker=None, progress=0.0)
        if status is JobStatus.succeeded:
            values.update(result=result, output_dir=output_dir, progress=1.0)
        with self.session.begin() as s:
            return bool(_changed(s, update(JobRow).where(
                JobRow.id == job_id, JobRow.worker == worker,
                JobRow.status == "running").values(**values)))

    def cancel(self, owner: str | None, job_id: str) -> JobRow:
        """Cancel a queued job at once; ask a running one to stop; refuse a finished one."""
        job = self.get_job(owner, job_id)
        with self.session.begin() as s:
            done = _changed(s, update(JobRow).where(
                JobRow.id == job_id, JobRow.status == "queued").values(
                status="cancelled", stage="cancelled", finished_at=now()))
            if not done:
                s.execute(update(JobRow).where(JobRow.id == job_id,
                                               JobRow.status == "running").values(
                    cancel_requested=True, stage="cancelling"))
        job = self.get_job(owner, job_id)
        if JobStatus(job.status).is_terminal() and job.status != "cancelled":
            raise Conflict(f"job {job_id!r} already {job.status}")
        return job

    def requeue_expired(self) -> int:
        """Running jobs whose lease expired: back to queued, or failed after max attempts."""
        t = now()
        with self.session.begin() as s:
            expired = (JobRow.status == "running") & (JobRow.lease_until < t)
            failed = _changed(s, update(JobRow).where(
                expired, JobRow.attempts >= JobRow.max_attempts).values(
                status="failed", stage="failed", finished_at=t, lease_until=None,
                error="worker lost (lease expired) on the last allowed attempt"))
            queued = _changed(s, update(JobRow).where(expired).values(
                status="queued", stage="queued", worker=None, progress=0.0,
                lease_until=None))
        return failed + queued


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def _sqlite_pragmas(conn: Any, _record: Any) -> None:
    cursor = conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
