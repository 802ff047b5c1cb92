"""The service end to end on the embedded defaults: start `affinity serve` (SQLite store,
one local worker), submit the bundled digits task set with `affinity.client.Client`, follow
its progress, print the recommended groups and where the report is. The service stops when
this script ends.

    python examples/serve_digits.py [--port 8000] [--keep]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import httpx

from affinity.client import Client
from affinity.verdict import group_lines, is_the_baseline

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--keep", action="store_true", help="leave the service running")
    args = parser.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    server = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port",
                               str(args.port)])
    try:
        for _ in range(600):
            if server.poll() is not None:
                print(f"affinity serve exited (code {server.returncode}) before it answered: "
                      "its log is above", file=sys.stderr)
                return 1
            try:
                httpx.get(f"{base}/healthz").raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            print(f"affinity serve did not answer at {base} within 60 s", file=sys.stderr)
            return 1
        with Client(base) as client:
            job = client.submit(HERE / "digits.yaml")
            print(f"submitted {job['id']}: {base}/v1/jobs/{job['id']}", flush=True)
            job = client.wait(job)
            if job["status"] != "succeeded":
                print(f"job {job['status']}: {job['error']}", file=sys.stderr)
                return 1
            result = client.result(job)
            print(result.verdict)
            for entry in result.groupings:
                groups = " | ".join(group_lines(entry))
                if is_the_baseline(entry):
                    lead = "it is the better baseline"
                elif entry.improvement is None:
                    lead = f"no fresh seed to compare with {entry.baseline}"
                else:
                    spread = ("one fresh seed, no interval" if entry.interval is None else
                              "95% {:+.1f}% to {:+.1f}%".format(
                                  *(100 * v for v in entry.interval)))
                    best = " | ".join(", ".join(g) for g in entry.best_groups or [])
                    lead = (f"best measured: {best}, vs {entry.baseline} "
                            f"{100 * entry.improvement:+.1f}%, {spread}")
                print(f"k={entry.k}: {entry.kind:11} {groups}  ({lead})")
            print(f"report: {base}/v1/jobs/{job['id']}/report "
                  f"(file: {Path('taskaffinity-data/jobs', job['id'], 'report.html')})")
        if args.keep:
            print(f"service running at {base} (docs: {base}/docs); Ctrl-C stops it")
            server.wait()
        return 0
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    sys.exit(main())
