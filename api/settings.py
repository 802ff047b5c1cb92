"""Service settings from ``TASKAFFINITY_*`` environment variables (docs/service.md, Settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TASKAFFINITY_", extra="ignore")

    data_dir: Path = Path("taskaffinity-data")
    """Uploads, results and reports; also the root task-set data paths are confined to."""
    database_url: str = ""
    """SQLAlchemy URL of the store; default: a SQLite file in data_dir."""
    executor: Literal["local", "ray"] = "local"
    """Where a job's subset probes run: in the worker, or as Ray tasks (chunked, on GPUs)."""
    ray_address: str = ""
    """With executor ray: the cluster (``auto``, ``ray://head:10001``); empty: a local Ray."""
    auth_tokens: str = ""
    """``owner:token,owner:token``; when set, every endpoint but /healthz needs
    ``Authorization: Bearer <token>``. Unset: auth off, one local owner (embedded default)."""
    max_tasks: int = Field(default=64, gt=1)
    max_rows: int = Field(default=2_000_000, gt=0)
    max_features: int = Field(default=100_000, gt=0)
    max_epochs: int = Field(default=5_000, gt=0)
    """Limit on training.epochs of one task set."""
    max_training_runs: float = Field(default=1_000.0, gt=0)
    """Limit on budget.training_runs (the analysis' compute) of one task set."""
    max_active_jobs: int = Field(default=1_000, gt=0)
    """Queued plus running jobs one owner may have."""
    max_upload_bytes: int = Field(default=512 * 1024**2, gt=0)
    lease_seconds: float = Field(default=60.0, gt=0)
    """A running job whose worker sent no heartbeat for this long is re-queued."""
    max_attempts: int = Field(default=3, gt=0)
    """Tries of a job before it is marked failed (a worker that died counts as a try)."""
    poll_seconds: float = Field(default=0.5, gt=0)
    embedded_worker: bool = True
    """`affinity serve` starts one worker process beside the API."""
    migrate: bool = True
    """At start, bring the store's schema to this release's (Alembic migrations, jobs and
    results kept); false: refuse to start on an outdated store, saying so."""
    device: str = "auto"
    torch_threads: int = Field(default=0, ge=0)
    """CPU threads of a worker's torch; 0: torch's default, or all cores but one for the
    worker that `affinity serve` embeds, so the API keeps a core."""

    def owners(self) -> dict[str, str]:
        """Token -> owner, from ``auth_tokens``; empty when auth is off."""
        pairs = [p.strip() for p in self.auth_tokens.split(",") if p.strip()]
        out = {}
        for pair in pairs:
            owner, sep, token = pair.partition(":")
            if not sep or not owner or not token:
                raise ValueError("TASKAFFINITY_AUTH_TOKENS must be owner:token pairs separated "
                                 f"by commas; got {pair.split(':')[0]!r}:…")
            out[token] = owner
        return out

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'taskaffinity.db').resolve()}"
