"""Load on the REST service over loopback, bounded: concurrent job submissions (200 by
default; 500 with --submissions) from one or more bearer tokens, with mixed status and result
reads running beside them; then 1,000 result reads from 5 concurrent clients (and, for
information, 1,000 more from 20), while the embedded worker runs the submitted jobs. Prints
a table; exits 1 unless 0 jobs are lost, 0 responses are 5xx and the p99 read latency
(5 clients) is under 50 ms.

    python -m bench.targets.load [--database-url URL] [--submissions 500] [--tokens 4]
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

READS, READ_CONCURRENCY, BUSY_CONCURRENCY, MIXED_READS, MIXED_CLIENTS = 1000, 5, 20, 500, 10
TASKSET = {"name": "load", "data": {"builtin": "digits"}, "model": {"hidden": [16]},
           "training": {"epochs": 1}, "probe": {"seeds": 1, "transfer_steps": 10},
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


async def run(base: str, submissions: int, tokens: list[str]) -> dict[str, object]:
    # connections: one per submission, MIXED_CLIENTS for the reads beside them (the sum stays
    # well under the default limit of 1,024 open files of the server process)
    limits = httpx.Limits(max_connections=submissions)
    auth = [{"Authorization": f"Bearer {t}"} for t in tokens] or [{}]
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits,
                                 headers=auth[0]) as client:
        # one finished job to read results from
        _, _, first = await timed(client, "POST", "/v1/jobs", json=TASKSET)
        while (await client.get(f"/v1/jobs/{first['id']}")).json()["status"] != "succeeded":
            await asyncio.sleep(0.2)
        submit_calls = [timed(client, "POST", "/v1/jobs", json=TASKSET,
                              headers=auth[i % len(auth)]) for i in range(submissions)]
        async with httpx.AsyncClient(base_url=base, timeout=300, headers=auth[0],
                                     limits=httpx.Limits(max_connections=MIXED_CLIENTS)) as side:
            mixed_calls = [timed(side, "GET", f"/v1/jobs/{first['id']}"
                                 + ("/result" if i % 2 else "")) for i in range(MIXED_READS)]
            done = await asyncio.gather(*submit_calls, *mixed_calls)
        submits, mixed = done[:submissions], done[submissions:]
        accepted = [(body["id"], i % len(auth)) for i, (_, status, body) in enumerate(submits)
                    if status == 202]

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
        known = set()
        for headers in auth:
            listed = (await client.get("/v1/jobs", params={"limit": 500},
                                       headers=headers)).json()
            known |= {job["id"] for job in listed["data"]}
        # cancel the load's queued jobs so the worker stops working through them
        await asyncio.gather(*(client.delete(f"/v1/jobs/{i}", headers=auth[a])
                               for i, a in accepted))
    statuses = [s for _, s, _ in submits + mixed + reads + busy]
    return {
        "submit": np.array([t for t, _, _ in submits]),
        "mixed": np.array([t for t, _, _ in mixed]),
        "read": np.array([t for t, _, _ in reads]),
        "busy": np.array([t for t, _, _ in busy]),
        "accepted": len(accepted),
        "lost": len({i for i, _ in accepted} - known),
        "5xx": sum(s >= 500 for s in statuses),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=0, help="owners with bearer tokens "
                                                                "(0: auth off)")
    args = parser.parse_args()
    tokens = [f"token-{i}" for i in range(args.tokens)]
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        env = {**os.environ, "TASKAFFINITY_DATA_DIR": str(Path(folder) / "data"),
               "TASKAFFINITY_DATABASE_URL": args.database_url, "TASKAFFINITY_DEVICE": "cpu",
               "TASKAFFINITY_AUTH_TOKENS": ",".join(f"owner{i}:{t}"
                                                    for i, t in enumerate(tokens))}
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
            out = asyncio.run(run(base, args.submissions, tokens))
        except httpx.HTTPError:
            print((Path(folder) / "server.log").read_text()[-3000:])
            raise
        finally:
            server.terminate()
            server.wait(30)
    ms = lambda a, q: 1000 * float(np.percentile(a, q))  # noqa: E731
    p99 = ms(out["read"], 99)
    rows = [
        ("submissions accepted (202)", f"{out['accepted']} / {args.submissions}", ""),
        ("jobs lost", str(out["lost"]), out["lost"] == 0),
        ("5xx responses", str(out["5xx"]), out["5xx"] == 0),
        ("submit latency p50 / p99", f"{ms(out['submit'], 50):.0f} / "
                                     f"{ms(out['submit'], 99):.0f} ms", ""),
        ("reads beside submits p50 / p99", f"{ms(out['mixed'], 50):.0f} / "
                                           f"{ms(out['mixed'], 99):.0f} ms", ""),
        (f"read p50 / p99, {READ_CONCURRENCY} clients", f"{ms(out['read'], 50):.1f} / "
                                                        f"{p99:.1f} ms", p99 < 50),
        (f"read p50 / p99, {BUSY_CONCURRENCY} clients", f"{ms(out['busy'], 50):.1f} / "
                                                        f"{ms(out['busy'], 99):.1f} ms", ""),
    ]
    print(f"store: {args.database_url or 'SQLite file (embedded default)'}; "
          f"{args.submissions} concurrent submissions from {max(1, len(tokens))} owner(s) "
          f"with {MIXED_READS} reads beside them, then {READS} result reads at each "
          "concurrency")
    for name, value, ok in rows:
        print(f"{name:32} {value:>20}  {'' if ok == '' else ('ok' if ok else 'MISS')}")
    return 0 if all(ok is not False for _, _, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
