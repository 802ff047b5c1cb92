"""The errors the CLI reports in its own words: invalid input, named for what it is (a task
set, evidence, a table), a ``ValueError`` whose message names the field and the problem (the
CLI prints ``invalid <what>: <message>`` and exits 2); an error answer of the service; and the
one line that stands for a crash (``crash_line``), whose traceback goes to a log."""

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


def crash_line(exc: BaseException, where: str) -> str:
    """One line for an unexpected failure (a bug, not bad input): what failed and that the
    traceback is in ``where`` (a log file, or the worker's log)."""
    message = " ".join(str(exc).split()) or "(no message)"
    if len(message) > 300:
        message = message[:297] + "..."
    return f"internal error, {type(exc).__name__}: {message} (traceback in {where})"
