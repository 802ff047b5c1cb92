"""Helpers for the service tests: database URLs (a fresh PostgreSQL schema per test)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, text

POSTGRES = os.environ.get("TASKAFFINITY_TEST_POSTGRES_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def fresh_postgres() -> str:
    """Empty the test database's public schema and return its URL; the test is skipped,
    saying why, when no PostgreSQL server answers there."""
    import pytest
    from sqlalchemy.exc import OperationalError

    engine = create_engine(POSTGRES)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS jobs, datasets, schema_version, "
                              "alembic_version CASCADE"))
    except OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at {POSTGRES} (set "
                    f"TASKAFFINITY_TEST_POSTGRES_URL): {str(exc.orig).strip().splitlines()[0]}")
    finally:
        engine.dispose()
    return POSTGRES


def store_url(kind: str, tmp_path: Path) -> str:
    """A fresh store URL: a SQLite file in ``tmp_path``, or the emptied PostgreSQL database."""
    return f"sqlite:///{tmp_path / 'store.db'}" if kind == "sqlite" else fresh_postgres()


class LiveServer:
    """The real app served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, settings, *, worker_thread: bool = False) -> None:
        import socket
        import threading

        import uvicorn

        from api.app import create_app

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings, worker=False), host="127.0.0.1",
                                port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.stop_worker = threading.Event()
        self.worker = None
        if worker_thread:
            from api.worker import work

            self.worker = threading.Thread(target=work, args=(settings, self.stop_worker),
                                           daemon=True)

    def __enter__(self) -> LiveServer:
        import time

        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        if self.worker:
            self.worker.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_worker.set()
        if self.worker:
            self.worker.join(60)
        self.server.should_exit = True
        self.thread.join(10)


def wait_for(client, job_id: str, states: set[str], timeout: float = 120) -> dict:
    """Poll a job until its status is in ``states``."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in states:
            return job
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} still {job['status']} after {timeout} s")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
