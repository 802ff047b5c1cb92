"""How far the progress' ETA strays at the measured level: each benchmark set's default
analysis with the benchmarks' progress log (``bench/eta.py``), and the least and most
projected total against the actual wall time, over the readings after the first stage, and
the median of their distance from it (the least and most are single readings).
No target (the 100-task one is ``bench/targets/hundred_tasks.py``'s); a run of a few seconds
is noisy.

    python -m bench.studies.measured_eta [NAME ...]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from affinity.analysis import analyze
from bench.data.realsets import HALVES, REALSETS
from bench.eta import EtaLog


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(2)
    names = args.names or [n for half in HALVES.values() for n in half]
    print("| set | seconds | runs (budget) | projected total | median distance | readings |")
    print("|---|---|---|---|---|---|")
    for name in names:
        with tempfile.TemporaryDirectory() as folder:
            taskset = REALSETS[name](Path(folder))
            log = EtaLog(every=1.0)
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # the log's stage lines
                result = analyze(taskset, progress=log)
            seconds = time.perf_counter() - started
        (low, high), count = log.spread(seconds)
        later = np.abs(log.errors(seconds))
        cost = result.meta.cost
        print(f"| {name} | {seconds:.0f} | {cost.training_runs:.0f} ({cost.budget:.0f}) "
              f"| {low:+.0%} to {high:+.0%} | {np.median(later) if count else 0:.0%} "
              f"| {count} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
