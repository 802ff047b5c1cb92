"""The ``affinity`` command: the analysis commands of ``affinity.cli`` plus the service's
``serve`` and ``worker`` (imported only when used, so analysis needs no service packages)."""

from __future__ import annotations

import argparse
import logging
import sys

from affinity import cli as analysis_cli

KEEP_ALIVE_SECONDS = 75  # longer than clients' and proxies' idle pools, so the server is
# not the side that closes an idle connection just as a client reuses it


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from api.settings import Settings

    uvicorn.run(create_app(Settings()), host=args.host, port=args.port, log_level="info",
                access_log=args.access_log, timeout_keep_alive=KEEP_ALIVE_SECONDS)
    return 0


def _worker(args: argparse.Namespace) -> int:
    """One worker; with device auto and several visible GPUs, one worker process per GPU."""
    import multiprocessing

    import torch

    from api.settings import Settings
    from api.worker import work

    settings = Settings(**({"device": args.device} if args.device else {}))
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
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("serve", "worker"):
        return analysis_cli.main(argv)
    parser = argparse.ArgumentParser(prog="affinity")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="the REST service with one local worker")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--access-log", action="store_true", help="log every request")
    worker = sub.add_parser("worker", help="run queued jobs: one job at a time per device; "
                                           "with several GPUs, one process per GPU")
    worker.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: settings)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                                                   "%(message)s")
    return {"serve": _serve, "worker": _worker}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
