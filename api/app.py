"""The FastAPI application factory. The lifespan opens the store and, on the embedded
defaults, starts one worker process beside the API (never FastAPI background tasks)."""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from affinity import __version__
from affinity.taskset import taskset_schema
from api import errors
from api.results import ResultCache
from api.routes import backbones, datasets, health, jobs, pages
from api.settings import Settings
from api.store import Store

log = logging.getLogger("taskaffinity.api")


def _worker_process(settings: Settings) -> None:
    from affinity.threads import limited_threads
    from api.worker import work

    logging.basicConfig(level=logging.INFO)
    os.nice(10)  # below the API process, which stays responsive while jobs run
    with limited_threads(settings.torch_threads or None) as threads:  # torch and BLAS pools
        work(settings.model_copy(update={"torch_threads": threads}))


def create_app(settings: Settings | None = None, *, worker: bool | None = None) -> FastAPI:
    """The app; ``worker`` (default: ``settings.embedded_worker``) starts a worker process."""
    settings = settings or Settings()
    owners = settings.owners()  # fail at start on a malformed TASKAFFINITY_AUTH_TOKENS
    start_worker = settings.embedded_worker if worker is None else worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        app.state.settings = settings
        app.state.owners = owners
        app.state.store = Store(settings.url, migrate=settings.migrate)
        app.state.results = ResultCache()
        process = None
        if start_worker:
            process = multiprocessing.get_context("spawn").Process(
                target=_worker_process, args=(settings,), name="taskaffinity-worker",
                daemon=True)
            process.start()
            log.info("worker process %s started", process.pid)
        try:
            yield
        finally:
            if process is not None:
                process.terminate()
                process.join(10)
            app.state.store.dispose()

    # Swagger UI and ReDoc from the package's own files: /docs works without internet
    app = FastAPIOffline(title="taskaffinity", version=__version__, lifespan=lifespan,
                         description="Task-affinity analysis and grouping for multi-task "
                                     "learning.", responses=errors.ERROR_RESPONSES)
    errors.install(app)
    for router in (jobs.router, jobs.tasksets, datasets.router, backbones.router,
                   health.router, pages.router):
        app.include_router(router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict:
    """FastAPI's document, with the task-set model as the body of ``POST /v1/jobs`` and of
    ``POST /v1/tasksets/check`` (the routes read it as a mapping or as YAML text, so that
    ``resolve`` can check it with its data and name the field in its own words)."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        doc = get_openapi(title=app.title, version=app.version, description=app.description,
                          routes=app.routes)
        schema = taskset_schema("#/components/schemas/{model}")
        components = doc.setdefault("components", {}).setdefault("schemas", {})
        components.update(schema.pop("$defs", {}))
        components["TaskSet"] = schema
        body = doc["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]
        body["schema"] = {"$ref": "#/components/schemas/TaskSet"}
        doc["paths"]["/v1/tasksets/check"]["post"]["requestBody"] = {"required": True, "content": {
            kind: {"schema": {"$ref": "#/components/schemas/TaskSet"}}
            for kind in ("application/json", "application/yaml")}}
        _link(doc, "/v1/jobs", "202", "job_id")
        _link(doc, "/v1/datasets", "201", "dataset_id")
        app.openapi_schema = doc
    return app.openapi_schema


def _link(doc: dict, collection: str, status: str, parameter: str) -> None:
    """OpenAPI links from ``POST collection`` to every operation on the item it created
    (its ``id`` as ``parameter``), so that clients and API fuzzers can follow them."""
    links = {}
    for path, operations in doc["paths"].items():
        if not path.startswith(f"{collection}/{{{parameter}}}"):
            continue
        for method, operation in operations.items():
            pointer = path.replace("~", "~0").replace("/", "~1")
            name = operation.get("operationId", f"{method}{pointer}")
            links[name] = {"operationRef": f"#/paths/{pointer}/{method}",
                           "parameters": {parameter: "$response.body#/id"}}
    doc["paths"][collection]["post"]["responses"][status]["links"] = links
