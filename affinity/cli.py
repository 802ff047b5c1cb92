"""The ``affinity`` command (contract §3). Exit codes: 0 ok, 2 invalid input, 1 other failure."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

import torch
from tqdm import tqdm

from affinity.analysis import analyze
from affinity.data import load_dataset
from affinity.exhaustive import ExhaustiveTable, exhaustive
from affinity.models import resolve_device
from affinity.report import write_report
from affinity.taskset import InvalidTaskSet, load_taskset


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="affinity", description=__doc__,
        epilog="Service commands (with the [service] extra): affinity serve, affinity worker.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="analyse a task set and write result.json and a report")
    run.add_argument("taskset", type=Path, help="task-set file (YAML or JSON)")
    run.add_argument("--out", type=Path, required=True, help="output folder")
    run.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    exh = sub.add_parser("exhaustive", help="train every subset of the tasks (ground truth)")
    exh.add_argument("taskset", type=Path, help="task-set file (YAML or JSON), at most 10 tasks")
    exh.add_argument("--out", type=Path, required=True, help="output folder")
    exh.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    exh.add_argument("--quiet", action="store_true", help="no progress bar")
    score = sub.add_parser("score", help="score groupings against an exhaustive table")
    score.add_argument("table", type=Path, help="exhaustive.json from `affinity exhaustive`")
    score.add_argument("--result", type=Path, help="result.json whose groupings to score")
    return parser


def _progress_bar(quiet: bool) -> tqdm:
    return tqdm(total=1, disable=quiet, unit="step", dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")


def _report(bar: tqdm):
    def progress(stage: str, done: int, total: int) -> None:
        bar.total = total
        bar.set_description_str(stage, refresh=False)
        bar.update(done - bar.n)
    return progress


def _device(name: str) -> torch.device | None:
    try:
        return resolve_device(name)
    except (ValueError, RuntimeError) as exc:
        print(f"--device: {exc}", file=sys.stderr)
        return None


def _run(args: argparse.Namespace) -> int:
    taskset = load_taskset(args.taskset)
    if (device := _device(args.device)) is None:
        return 2
    with _progress_bar(args.quiet) as bar:
        result = analyze(taskset, base_dir=args.taskset.resolve().parent, device=device,
                         progress=_report(bar))
    path = result.write(args.out)
    report = write_report(result, args.out)
    print(f"wrote {path} and {report} ({result.meta['seconds']:.1f} s)")
    return 0


def _exhaustive(args: argparse.Namespace) -> int:
    taskset = load_taskset(args.taskset)
    if (device := _device(args.device)) is None:
        return 2
    data = load_dataset(taskset, args.taskset.resolve().parent).to(device)
    with _progress_bar(args.quiet) as bar:
        table = exhaustive(taskset, data, device, progress=_report(bar))
    print(f"wrote {table.write(args.out)} ({len(table.subsets)} subsets)")
    return 0


def _score(args: argparse.Namespace) -> int:
    try:
        table = ExhaustiveTable.read(args.table)
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidTaskSet(f"table: cannot read {str(args.table)!r}: {exc}") from None
    for k in range(1, len(table.tasks) + 1):
        groups, loss = table.optimum(k)
        print(f"optimum k={k}: total loss {loss:.6g}  groups {groups}")
    if args.result:
        doc = json.loads(args.result.read_text())
        for entry in doc.get("groupings", []):
            loss = table.grouping_loss(entry["groups"])
            print(f"result k={entry['k']}: total loss {loss:.6g}  regret "
                  f"{100 * table.regret(entry['groups']):.2f}%  groups {entry['groups']}")
    return 0


COMMANDS = {"run": _run, "exhaustive": _exhaustive, "score": _score}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except InvalidTaskSet as exc:
        print(f"invalid task set: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the CLI's contract is exit code 1 on failure
        traceback.print_exc()
        print(f"error: analysis failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
