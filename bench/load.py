"""Load on the REST service over loopback, bounded: 200 concurrent job submissions, then
1,000 result reads from 5 concurrent clients (and, for information, 1,000 more from 20),
while the embedded worker runs the submitted jobs. Prints a table; exits 1 unless 0 jobs
are lost, 0 responses are 5xx and the p99 read latency (5 clients) is under 50 ms.

    python bench/load.py [--database-url URL]   # default: a SQLite file (embedded store)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

SUBMISSIONS, READS, READ_CONCURRENCY, BUSY_CONCURRENCY = 200, 1000, 5, 20
TASKSET = {"name": "load", "data": {"builtin": "digits"}, "model": {"hidden": [16]},
           "probe": {"epochs": 1, "seeds": 1, "transfer_steps": 10},
           "tasks": [{"name": f"digit_{d}", "type": "binary"} for d in (0, 1, 2)]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def timed(client: httpx.AsyncClient, method: str, url: str, **kw) -> tuple[float, int,
                                                                                   dict]:
    start = time.perf_counter()
    response = await client.request(method, url, **kw)
    return time.perf_counter() - start, response.status_code, response.json()


async def run(base: str) -> dict[str, object]:
    limits = httpx.Limits(max_connections=SUBMISSIONS)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        # one finished job to read results from
        _, _, first = await timed(client, "POST", "/v1/jobs", json=TASKSET)
        while (await client.get(f"/v1/jobs/{first['id']}")).json()["status"] != "succeeded":
            await asyncio.sleep(0.2)
        submits = await asyncio.gather(*(timed(client, "POST", "/v1/jobs", json=TASKSET)
                                         for _ in range(SUBMISSIONS)))
        accepted = [body["id"] for _, status, body in submits if status == 202]

        async def reads_with(clients: int) -> list[tuple[float, int, dict]]:
            """READS reads by ``clients`` concurrent clients, each on its own connection."""
            async with httpx.AsyncClient(base_url=base, timeout=120) as readers:
                semaphore = asyncio.Semaphore(clients)

                async def read() -> tuple[float, int, dict]:
                    async with semaphore:
                        return await timed(readers, "GET", f"/v1/jobs/{first['id']}/result")

                return await asyncio.gather(*(read() for _ in range(READS)))

        reads = await reads_with(READ_CONCURRENCY)
        busy = await reads_with(BUSY_CONCURRENCY)
        listed = (await client.get("/v1/jobs", params={"limit": 500})).json()
        # cancel the load's queued jobs so the worker stops working through them
        await asyncio.gather(*(client.delete(f"/v1/jobs/{i}") for i in accepted))
    known = {job["id"] for job in listed["data"]}
    statuses = [s for _, s, _ in submits + reads + busy]
    return {
        "submit": np.array([t for t, _, _ in submits]),
        "read": np.array([t for t, _, _ in reads]),
        "busy": np.array([t for t, _, _ in busy]),
        "accepted": len(accepted),
        "lost": len(set(accepted) - known),
        "5xx": sum(s >= 500 for s in statuses),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        env = {**os.environ, "TASKAFFINITY_DATA_DIR": str(Path(folder) / "data"),
               "TASKAFFINITY_DATABASE_URL": args.database_url, "TASKAFFINITY_DEVICE": "cpu"}
        server = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port",
                                   str(port)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=open(Path(folder) / "server.log", "w"))
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            out = asyncio.run(run(base))
        except httpx.HTTPError:
            print((Path(folder) / "server.log").read_text()[-3000:])
            raise
        finally:
            server.terminate()
            server.wait(30)
    ms = lambda a, q: 1000 * float(np.percentile(a, q))  # noqa: E731
    p99 = ms(out["read"], 99)
    rows = [
        ("submissions accepted (202)", f"{out['accepted']} / {SUBMISSIONS}", ""),
        ("jobs lost", str(out["lost"]), out["lost"] == 0),
        ("5xx responses", str(out["5xx"]), out["5xx"] == 0),
        ("submit latency p50 / p99", f"{ms(out['submit'], 50):.0f} / "
                                     f"{ms(out['submit'], 99):.0f} ms", ""),
        (f"read p50 / p99, {READ_CONCURRENCY} clients", f"{ms(out['read'], 50):.1f} / "
                                                        f"{p99:.1f} ms", p99 < 50),
        (f"read p50 / p99, {BUSY_CONCURRENCY} clients", f"{ms(out['busy'], 50):.1f} / "
                                                        f"{ms(out['busy'], 99):.1f} ms", ""),
    ]
    print(f"store: {args.database_url or 'SQLite file (embedded default)'}; {SUBMISSIONS} "
          f"concurrent submissions, then {READS} result reads at each concurrency")
    for name, value, ok in rows:
        print(f"{name:32} {value:>20}  {'' if ok == '' else ('ok' if ok else 'MISS')}")
    return 0 if all(ok is not False for _, _, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
