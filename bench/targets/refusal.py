"""How fast ``affinity run`` refuses an invalid task set: a schema error and a column that is
not in the data, each as a whole command (a fresh process), against the same command's cost
of loading the analysis' libraries (torch, the measures, the report), which it used to pay
before refusing. Target: each refusal's median under 1 s on an idle machine.

    python -m bench.targets.refusal [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 1.0
CASES = {
    "schema error (tasks[0].type)": "tasks:\n  - {name: a, column: digit_0, type: ordinal}\n",
    "column not in the data (tasks[0].column)":
        "tasks:\n  - {name: a, column: digit_11, type: binary}\n",
}
HEAVY = "import affinity.analysis, affinity.report"


def timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    return time.perf_counter() - started, proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows, missed = [], False
    with tempfile.TemporaryDirectory() as folder:
        for name, tasks in CASES.items():
            path = Path(folder) / "t.yaml"
            path.write_text("data: {builtin: digits}\n" + tasks
                            + "  - {name: b, column: digit_1, type: binary}\n")
            runs = []
            for _ in range(args.repeats):
                seconds, proc = timed([sys.executable, "-m", "affinity.cli", "run", str(path),
                                       "--out", str(Path(folder) / "out")])
                assert proc.returncode == 2 and "invalid task set" in proc.stderr, proc.stderr
                runs.append(seconds)
            rows.append((name, statistics.median(runs)))
    heavy = statistics.median(timed([sys.executable, "-c", HEAVY])[0]
                              for _ in range(args.repeats))
    print(f"{'case':<44} {'median':>8} {'target':>8} {'libraries / refusal':>20}")
    for name, seconds in rows:
        missed |= seconds >= TARGET_SECONDS
        print(f"{name:<44} {seconds:>7.2f}s {'< 1 s':>8} {heavy / seconds:>19.1f}x")
    print(f"{'loading the analysis libraries alone':<44} {heavy:>7.2f}s")
    print("MISSED" if missed else "all targets met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
