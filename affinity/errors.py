"""The errors the CLI reports in its own words: invalid input, named for what it is (a task
set, evidence, a table), a ``ValueError`` whose message names the field and the problem (the
CLI prints ``invalid <what>: <message>`` and exits 2); and an error answer of the service."""

from __future__ import annotations


class InvalidInput(ValueError):
    """Input that names its field and problem; ``what`` says which input it was."""

    what = "input"

    def __init__(self, message: str, what: str | None = None) -> None:
        super().__init__(message)
        if what:
            self.what = what


class ServiceError(RuntimeError):
    """The service answered with an error ``status`` (0: no answer); ``detail`` is its
    message."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}" if status else detail)
        self.status, self.detail = status, detail
