"""The service's commands, ``affinity serve`` and ``affinity worker``: ``register`` adds them
to the ``affinity`` command (an entry point of the ``taskaffinity.commands`` group, so imports
flow from ``api`` to ``affinity`` only). ``python -m api.cli`` is the ``affinity`` command
itself."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from typing import TYPE_CHECKING

from affinity.cli import AddCommand, Handler

if TYPE_CHECKING:
    from api.settings import Settings

KEEP_ALIVE_SECONDS = 75  # longer than clients' and proxies' idle pools, so the server is
# not the side that closes an idle connection just as a client reuses it


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                                                   "%(message)s")


def _settings(device: str | None = None) -> Settings | None:
    """The service's settings from the environment (``device``: instead of
    TASKAFFINITY_DEVICE), or None, having said which is wrong."""
    from pydantic import ValidationError

    from api.settings import Settings

    try:
        settings = Settings(device=device) if device else Settings()
        settings.owners()
    except ValidationError as exc:
        for error in exc.errors():
            name = (Settings.model_config.get("env_prefix", "")
                    + "_".join(str(p) for p in error["loc"])).upper()
            print(f"invalid settings: {name}: {error['msg']}", file=sys.stderr)
        return None
    except ValueError as exc:
        print(f"invalid settings: {exc}", file=sys.stderr)
        return None
    return settings


def _store_ready(settings: Settings) -> bool:
    """Create the data directory (the default store is a SQLite file in it) and migrate the
    store (or, with TASKAFFINITY_MIGRATE=false, check it is up to date) before anything
    starts; False, having said why, when it cannot be used."""
    from api.store import Store, StoreOutdated

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        Store(settings.url, migrate=settings.migrate).dispose()
    except StoreOutdated as exc:
        print(exc, file=sys.stderr)
        return False
    return True


def serve(host: str, port: int, access_log: bool = False) -> int:
    """The REST API (and, by the settings, its embedded worker) on ``host:port``."""
    import uvicorn

    from api.app import create_app

    _logging()
    settings = _settings()
    if settings is None or not _store_ready(settings):
        return 2
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info",
                access_log=access_log, timeout_keep_alive=KEEP_ALIVE_SECONDS)
    return 0


def worker(device: str | None = None) -> int:
    """One worker; with device auto and several visible GPUs, one worker process per GPU."""
    import multiprocessing

    import torch

    from api.worker import work

    _logging()
    settings = _settings(device)
    if settings is None or not _store_ready(settings):
        return 2
    gpus = torch.cuda.device_count() if settings.device == "auto" else 0
    if gpus <= 1:
        work(settings)
        return 0
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=work, args=(settings.model_copy(
        update={"device": f"cuda:{i}"}),), name=f"taskaffinity-worker-cuda{i}")
        for i in range(gpus)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    return max(p.exitcode or 0 for p in processes)


def register(command: AddCommand) -> dict[str, Handler]:
    """Add ``serve`` and ``worker`` to the ``affinity`` command; their handlers by name."""
    server = command("serve", "the REST service with one local worker (the service extra)")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=8000)
    server.add_argument("--access-log", action="store_true", help="log every request")
    work = command("worker", "run queued jobs: one job at a time per device; with several "
                             "GPUs, one process per GPU (the service extra)")
    work.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: "
                                       "TASKAFFINITY_DEVICE)")
    return {"serve": _needs_service(lambda a: serve(a.host, a.port, a.access_log)),
            "worker": _needs_service(lambda a: worker(a.device))}


def _needs_service(handler: Handler) -> Handler:
    """``handler``, refusing (exit 2, saying what to install) where the service extra is
    not installed."""
    def run(args: argparse.Namespace) -> int:
        if importlib.util.find_spec("fastapi") is None:
            print(f"affinity {args.command} needs the service: "
                  "pip install 'taskaffinity[service]'", file=sys.stderr)
            return 2
        return handler(args)
    return run


def main(argv: list[str] | None = None) -> int:
    from affinity.cli import main as affinity_main

    return affinity_main(argv)


if __name__ == "__main__":
    sys.exit(main())
