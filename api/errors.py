"""Domain errors to HTTP responses, in one place. Every body is {"detail": "<field>: <problem>"}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from affinity.taskset import InvalidTaskSet
from api.store import Conflict, NotFound


class TooLarge(ValueError):
    """An upload over the size cap."""


class TooManyJobs(RuntimeError):
    """The owner has as many active jobs as allowed."""


def _field(loc: tuple) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path")]
    text = ""
    for p in parts:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text or "body"


class ErrorBody(BaseModel):
    """Every error response: one sentence that names the field and the problem."""

    detail: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in (
        (400, "the body is not valid JSON"),
        (401, "a bearer token is required (when the service has tokens)"),
        (403, "the token gives no access"),
        (404, "no such id for this owner"),
        (405, "the path does not take this method (the Allow header lists those it takes)"),
        (409, "the request conflicts with the object's state"),
        (413, "the upload is larger than the limit"),
        (422, "invalid input: the detail names the field"),
        (429, "too many queued or running jobs for this owner"),
        (503, "the store is unavailable; try again"))}
"""Documented on every route (the OpenAPI document's responses), with the one error shape."""


METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def _allowed(app: FastAPI, request: Request) -> list[str]:
    """Every method some route takes at the request's path (Starlette's own 405 names only
    the first matching route's), found by matching the request again under each method."""
    return [m for m in METHODS
            if any(route.matches({**request.scope, "method": m})[0] == Match.FULL
                   for route in app.router.routes)]


def install(app: FastAPI) -> None:
    def handler(status: int):
        async def respond(_request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=status)
        return respond

    app.add_exception_handler(InvalidTaskSet, handler(422))
    app.add_exception_handler(NotFound, handler(404))
    app.add_exception_handler(Conflict, handler(409))
    app.add_exception_handler(TooLarge, handler(413))
    app.add_exception_handler(TooManyJobs, handler(429))

    async def database_down(_request: Request, _exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": "store unavailable; try again"}, status_code=503)

    app.add_exception_handler(OperationalError, database_down)

    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = "; ".join(f"{_field(tuple(e['loc']))}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"detail": detail}, status_code=422)

    app.add_exception_handler(RequestValidationError, invalid_request)  # type: ignore[arg-type]

    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed(app, request))
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code,
                            headers=headers)

    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
