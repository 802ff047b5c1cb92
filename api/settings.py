"""Service settings from ``TASKAFFINITY_*`` environment variables (contract §4)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TASKAFFINITY_", extra="ignore")

    data_dir: Path = Path("taskaffinity-data")
    """Uploads, results and reports; also the root task-set data paths are confined to."""
    database_url: str = ""
    """SQLAlchemy URL of the store; default: a SQLite file in data_dir."""
    executor: str = "local"
    max_upload_bytes: int = Field(default=512 * 1024**2, gt=0)
    lease_seconds: float = Field(default=60.0, gt=0)
    """A running job whose worker sent no heartbeat for this long is re-queued."""
    max_attempts: int = Field(default=3, gt=0)
    """Tries of a job before it is marked failed (a worker that died counts as a try)."""
    poll_seconds: float = Field(default=0.5, gt=0)
    embedded_worker: bool = True
    """`affinity serve` starts one worker process beside the API."""
    device: str = "auto"
    torch_threads: int = Field(default=0, ge=0)
    """CPU threads of a worker's torch; 0: torch's default, or all cores but one for the
    worker that `affinity serve` embeds, so the API keeps a core."""

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'taskaffinity.db').resolve()}"
