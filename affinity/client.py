"""A Python client of the taskaffinity service (``affinity serve``), over httpx.

    from affinity.client import Client
    client = Client("http://127.0.0.1:8000")          # token: TASKAFFINITY_TOKEN by default
    job = client.submit("examples/digits.yaml")          # a path, a dict or a TaskSet
    job = client.wait(job)                               # progress bar with stage and ETA
    result = client.result(job)                          # an affinity.Result
    client.report(job, "report.html")

A task set whose ``data.path`` names a file beside it (or, for a dict, relative to the
working folder) is uploaded first and submitted by its dataset id; a path that is not a
local file is left for the service to resolve inside its data folder.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml

from affinity.errors import ServiceError

if TYPE_CHECKING:  # imported on use: the client and the shell commands start fast
    from affinity.result import Result
    from affinity.taskset import TaskSet

DEFAULT_SERVER = "http://127.0.0.1:8000"
TERMINAL = ("succeeded", "failed", "cancelled")

Job = dict[str, Any]
"""A job as the service returns it (``JobPublic``): id, status, stage, progress, error, …"""


class Client:
    """The service at ``url`` (default: ``TASKAFFINITY_SERVER``, else localhost:8000), with a
    bearer ``token`` (default: ``TASKAFFINITY_TOKEN``; none when unset)."""

    def __init__(self, url: str | None = None, token: str | None = None, *,
                 timeout: float = 60.0) -> None:
        self.url = (url or os.environ.get("TASKAFFINITY_SERVER") or DEFAULT_SERVER).rstrip("/")
        token = token if token is not None else os.environ.get("TASKAFFINITY_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceError(0, f"cannot reach the service at {self.url}: {exc}") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ServiceError(response.status_code, str(detail))
        return response

    def upload(self, path: str | Path) -> dict[str, Any]:
        """Upload a CSV, Parquet or NPZ file; returns the dataset (its ``id`` for
        ``data.dataset``)."""
        path = Path(path)
        with path.open("rb") as fh:
            return self._call("POST", "/v1/datasets", files={"file": (path.name, fh)}).json()

    def submit(self, taskset: TaskSet | dict[str, Any] | str | Path) -> Job:
        """Queue a task set (a YAML/JSON file, a dict or a TaskSet); a local data file is
        uploaded first."""
        doc, base = _document(taskset)
        data = dict(doc.get("data") or {})
        if data.get("path") and (base / data["path"]).is_file():
            data["dataset"] = self.upload(base / data.pop("path"))["id"]
            doc = {**doc, "data": data}
        return self._call("POST", "/v1/jobs", json=doc).json()

    def job(self, job: Job | str) -> Job:
        return self._call("GET", f"/v1/jobs/{_id(job)}").json()

    def jobs(self, status: str | None = None, limit: int = 50) -> list[Job]:
        """The owner's jobs, newest first."""
        params: dict[str, Any] = {"limit": limit, **({"status": status} if status else {})}
        return self._call("GET", "/v1/jobs", params=params).json()["data"]

    def cancel(self, job: Job | str) -> Job:
        """Cancel: a queued job at once, a running one within a few probe steps."""
        return self._call("DELETE", f"/v1/jobs/{_id(job)}").json()

    def wait(self, job: Job | str, *, progress: bool = True, poll: float = 1.0,
             timeout: float | None = None) -> Job:
        """Poll until the job is succeeded, failed or cancelled; return it. With
        ``progress``: a bar with the stage and an ETA on a terminal, else a log line per stage
        and at most every 10 s (on stderr; ``affinity.display``)."""
        from affinity.display import ProgressDisplay

        current = self.job(job)
        deadline = None if timeout is None else time.monotonic() + timeout
        with ProgressDisplay("%", enabled=progress) as display:
            while True:
                stage = "" if current["status"] in TERMINAL else \
                    f": {current['stage'] or 'waiting'}"
                display.show(f"{current['id']} {current['status']}{stage}",
                             current["progress"], 100.0)
                if current["status"] in TERMINAL:
                    return current
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"job {current['id']} still {current['status']} after "
                                       f"{timeout} s")
                time.sleep(poll)
                current = self.job(current)

    def result(self, job: Job | str) -> Result:
        """The succeeded job's result (409 ServiceError before that)."""
        from affinity.result import Result

        return Result.from_dict(self._call("GET", f"/v1/jobs/{_id(job)}/result").json())

    def report(self, job: Job | str, path: str | Path) -> Path:
        """Write the job's HTML report to ``path``."""
        path = Path(path)
        path.write_bytes(self._call("GET", f"/v1/jobs/{_id(job)}/report").content)
        return path

    def fetch(self, job: Job | str, out_dir: str | Path) -> Path:
        """Write the job's result.json, matrices/*.csv and report.html into ``out_dir``, as
        ``affinity run --out`` does; returns the result's path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = self.result(job).write(out)
        self.report(job, out / "report.html")
        return path


def _id(job: Job | str) -> str:
    return job if isinstance(job, str) else job["id"]


def _document(taskset: TaskSet | dict[str, Any] | str | Path) -> tuple[dict[str, Any], Path]:
    """The task set as a JSON document, and the folder its relative data path is read from."""
    from affinity.taskset import TaskSet

    if isinstance(taskset, TaskSet):
        return (taskset.model_dump(mode="json", exclude_defaults=True),
                taskset.folder or Path.cwd())
    if isinstance(taskset, dict):
        return dict(taskset), Path.cwd()
    path = Path(taskset)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ServiceError(0, f"cannot read the task set {str(path)!r}: {exc}") from None
    if not isinstance(doc, dict):
        raise ServiceError(0, f"{str(path)!r} is not a task set (a YAML or JSON mapping)")
    return doc, path.parent
