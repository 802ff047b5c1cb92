"""``GET /``: the jobs page. A server-side template with no data of its own: the page's
script reads and submits through the API, with the bearer token kept in the browser tab."""

from __future__ import annotations

import functools

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from affinity import __version__

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


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def jobs_page() -> HTMLResponse:
    return HTMLResponse(_templates().get_template("jobs.html").render(
        version=__version__, example=EXAMPLE))
