"""``GET /``: the jobs page. The server renders the first page of jobs where it knows whose
they are (auth off: the one local owner), so they show at first paint; with auth on, the page
asks for the token instead. The page's script then refreshes, reads and submits through the
API, with the bearer token kept in the browser tab."""

from __future__ import annotations

import functools

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from affinity import __version__
from api.deps import LOCAL_OWNER, SettingsDep, StoreDep
from api.schemas import JobPublic

router = APIRouter(tags=["pages"])

EXAMPLE = """name: digits
data: {builtin: digits}
tasks:
  - {name: digit_0, type: binary}
  - {name: digit_1, type: binary}
  - {name: digit_7, type: binary}
training: {epochs: 20, batch_size: 128, patience: 3}
budget: {training_runs: 20}
"""


@functools.cache
def _templates() -> Environment:
    return Environment(loader=PackageLoader("api", "templates"),
                       autoescape=select_autoescape(["html"]))


FIRST_PAGE = 100  # jobs rendered on the server; the script's refresh shows as many


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def jobs_page(store: StoreDep, settings: SettingsDep) -> HTMLResponse:
    jobs: list[JobPublic] | None = None  # None: whose jobs is not known without a token
    count = 0
    if not settings.owners():
        rows, count = store.list_jobs(LOCAL_OWNER, None, FIRST_PAGE, 0)
        jobs = [JobPublic.of(row) for row in rows]
    return HTMLResponse(_templates().get_template("jobs.html").render(
        version=__version__, example=EXAMPLE, jobs=jobs, count=count))
