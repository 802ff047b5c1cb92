"""Domain errors to HTTP responses, in one place. Every body is {"detail": "<field>: <problem>"}."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

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

    app.add_exception_handler(RequestValidationError, invalid_request)
