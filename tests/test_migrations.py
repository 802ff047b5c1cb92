"""The store's schema under Alembic, on SQLite and PostgreSQL: what the revisions create is
what the models declare, and a store made before Alembic is upgraded in place."""

from __future__ import annotations

import pytest
from sqlalchemy import Integer, MetaData, create_engine, inspect, select, text

from api.store import Base, JobRow, Store, StoreOutdated
from tests.service_helpers import store_url

TASKSET = {"data": {"builtin": "digits"},
           "tasks": [{"name": "digit_0", "type": "binary"}, {"name": "digit_1", "type": "binary"}]}
RESULT = {"tasks": ["digit_0", "digit_1"], "verdict": "train every task alone",
          "groupings": [{"k": 2, "groups": [["digit_0"], ["digit_1"]]}]}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    return store_url(request.param, tmp_path)


def schema(engine) -> dict:
    """Per table: its columns (name, type family, nullable) and its indexes."""
    found = inspect(engine)
    return {t: (sorted((c["name"], type(c["type"]).__mro__[-3].__name__, c["nullable"])
                       for c in found.get_columns(t)),
                sorted((i["name"], tuple(i["column_names"])) for i in found.get_indexes(t)))
            for t in ("datasets", "jobs")}


def test_the_revisions_create_what_the_models_declare(url, tmp_path):
    store = Store(url)
    migrated = schema(store.engine)
    store.dispose()
    reference = create_engine(f"sqlite:///{tmp_path / 'models.db'}")
    Base.metadata.create_all(reference)
    assert migrated == schema(reference)
    with create_engine(url).connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"


def legacy_store(url: str) -> str:
    """A store as the release before Alembic left it: its tables, a schema_version table at
    version 1, and a succeeded job with its result."""
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    legacy = MetaData()
    from sqlalchemy import Column, Table

    version = Table("schema_version", legacy, Column("version", Integer, primary_key=True))
    legacy.create_all(engine)
    with engine.begin() as conn:
        conn.execute(version.insert().values(version=1))
        conn.execute(JobRow.__table__.insert().values(
            id="job_legacy", owner="alice", name="old", taskset=TASKSET, status="succeeded",
            stage="succeeded", progress=1.0, attempts=1, max_attempts=3,
            cancel_requested=False, created_at=Base.metadata.tables["jobs"].c.created_at
            .default.arg(None), result=RESULT, output_dir="/data/jobs/job_legacy"))
    engine.dispose()
    return "job_legacy"


def test_a_store_from_before_alembic_is_upgraded_in_place(url):
    job_id = legacy_store(url)
    with pytest.raises(StoreOutdated, match="TASKAFFINITY_MIGRATE=true"):
        Store(url, migrate=False)  # refused, and nothing changed
    assert "schema_version" in inspect(create_engine(url)).get_table_names()
    store = Store(url)
    job = store.get_job("alice", job_id)
    assert job.status == "succeeded" and job.result == RESULT and job.taskset == TASKSET
    tables = inspect(store.engine).get_table_names()
    assert "schema_version" not in tables and "alembic_version" in tables
    assert store.migrate() == "0001"
    store.add_job("alice", TASKSET)  # the upgraded store takes new jobs
    with store.engine.connect() as conn:
        assert conn.execute(select(JobRow.id)).scalars().all().count(job_id) == 1
    store.dispose()
    Store(url, migrate=False).dispose()  # up to date: opens without migrating


def test_an_empty_database_is_refused_without_migrating(url):
    with pytest.raises(StoreOutdated, match="revision none"):
        Store(url, migrate=False)


def test_serve_refuses_an_outdated_store_when_told_not_to_migrate(tmp_path, monkeypatch,
                                                                   capsys):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    legacy_store(url)
    monkeypatch.setenv("TASKAFFINITY_DATABASE_URL", url)
    monkeypatch.setenv("TASKAFFINITY_MIGRATE", "false")
    from affinity.cli import main

    assert main(["serve", "--port", "1"]) == 2
    assert "start with TASKAFFINITY_MIGRATE=true" in capsys.readouterr().err.replace("Start",
                                                                                      "start")
    assert main(["worker"]) == 2


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("TASKAFFINITY_MAX_TASKS", "many", "TASKAFFINITY_MAX_TASKS: Input should be a valid integer"),
    ("TASKAFFINITY_EXECUTOR", "spark", "TASKAFFINITY_EXECUTOR: Input should be 'local' or 'ray'"),
    ("TASKAFFINITY_AUTH_TOKENS", "secret", "TASKAFFINITY_AUTH_TOKENS must be owner:token pairs"),
])
def test_serve_and_worker_refuse_bad_settings_by_name(tmp_path, monkeypatch, capsys,
                                                      variable, value, says):
    data_dir = tmp_path / "data"
    monkeypatch.setenv("TASKAFFINITY_DATA_DIR", str(data_dir))
    monkeypatch.setenv(variable, value)
    from affinity.cli import main

    for command in (["serve", "--port", "1"], ["worker"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert f"invalid settings: {says}" in err and "Traceback" not in err
    assert not data_dir.exists()  # refused before anything was created
