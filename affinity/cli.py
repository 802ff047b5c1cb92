"""The ``affinity`` command (contract §3). Exit codes: 0 ok, 2 invalid input, 1 other failure."""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from tqdm import tqdm

from affinity.analysis import analyze
from affinity.models import resolve_device
from affinity.taskset import InvalidTaskSet, load_taskset


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="affinity", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="analyse a task set and write result.json and a report")
    run.add_argument("taskset", type=Path, help="task-set file (YAML or JSON)")
    run.add_argument("--out", type=Path, required=True, help="output folder")
    run.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _run(args: argparse.Namespace) -> int:
    taskset = load_taskset(args.taskset)
    try:
        device = resolve_device(args.device)
    except (ValueError, RuntimeError) as exc:
        print(f"--device: {exc}", file=sys.stderr)
        return 2
    with tqdm(total=1, disable=args.quiet, unit="step", dynamic_ncols=True,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}") as bar:

        def progress(stage: str, done: int, total: int) -> None:
            bar.total = total
            bar.set_description_str(stage, refresh=False)
            bar.update(done - bar.n)

        result = analyze(taskset, base_dir=args.taskset.resolve().parent, device=device,
                         progress=progress)
    path = result.write(args.out)
    print(f"wrote {path} and {args.out / 'report.md'} ({result.meta['seconds']:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except InvalidTaskSet as exc:
        print(f"invalid task set: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the CLI's contract is exit code 1 on failure
        traceback.print_exc()
        print(f"error: analysis failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
