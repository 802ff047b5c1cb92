"""Helpers for the service tests: database URLs (a fresh PostgreSQL schema per test)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, text

POSTGRES = os.environ.get("TASKAFFINITY_TEST_POSTGRES_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def fresh_postgres() -> str:
    """Empty the test database's public schema and return its URL."""
    engine = create_engine(POSTGRES)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS jobs, datasets, schema_version CASCADE"))
    engine.dispose()
    return POSTGRES


def store_url(kind: str, tmp_path: Path) -> str:
    """A fresh store URL: a SQLite file in ``tmp_path``, or the emptied PostgreSQL database."""
    return f"sqlite:///{tmp_path / 'store.db'}" if kind == "sqlite" else fresh_postgres()
