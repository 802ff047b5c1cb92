"""The service's commands, ``affinity serve`` and ``affinity worker`` (parsed by
``affinity.cli``, which imports this module only when one of them runs). ``python -m api.cli``
is the ``affinity`` command itself."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

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


def main(argv: list[str] | None = None) -> int:
    from affinity.cli import main as affinity_main

    return affinity_main(argv)


if __name__ == "__main__":
    sys.exit(main())
