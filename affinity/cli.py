"""The ``affinity`` command. Exit codes: 0 ok, 2 invalid input, 1 other failure."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from affinity.errors import InvalidInput, ServiceError, crash_line

if TYPE_CHECKING:  # the verbs import what they use, so that --help answers at once
    from affinity.result import Result
    from affinity.result_models import GroupingEntry

# Heavy libraries (torch, pandas, the service) are imported by the commands that use them,
# so that `affinity --help` and the service client commands start fast.


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default in its help line (flags and required options left out)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, argparse.SUPPRESS) or action.required:
            return action.help or ""
        return super()._get_help_string(action) or ""


def _at_least(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``least``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"a whole number; got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"at least {least}; got {value}")
        return value
    return parse


Handler = Callable[[argparse.Namespace], int]
AddCommand = Callable[..., argparse.ArgumentParser]
"""``command(name, help, **add_parser_kwargs)``: a new subcommand's parser."""
COMMANDS_GROUP = "taskaffinity.commands"
"""Entry points that add commands: each names a function that takes ``AddCommand``, adds its
commands' parsers and returns their handlers by name (the service's ``serve`` and
``worker``: ``api/cli.py``)."""


def _registrations() -> list[Callable[[AddCommand], dict[str, Handler]]]:
    return [ep.load() for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="affinity", description=__doc__,
                                     formatter_class=_Help)
    from affinity import __version__

    parser.add_argument("--version", action="version", version=f"affinity {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, formatter_class=_Help,
                              **kwargs)

    run = command("run", "analyse a task set and write result.json and a report")
    run.add_argument("taskset", type=Path, help="task-set file (YAML or JSON)")
    run.add_argument("--out", type=Path, required=True, help="output folder")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--mlflow", action="store_true",
                     help="also log the run to MLflow (MLFLOW_TRACKING_URI; the mlflow extra)")
    run.add_argument("--mlflow-experiment", help="MLflow experiment name (default: MLflow's)")
    run.add_argument("--threads", type=_at_least(0), default=0,
                     help="CPU threads (0: all cores but one)")
    exh = command("exhaustive", "train every subset of the tasks (ground truth)")
    exh.add_argument("taskset", type=Path, help="task-set file (YAML or JSON), at most 12 tasks")
    exh.add_argument("--out", type=Path, required=True, help="output folder")
    exh.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    exh.add_argument("--quiet", action="store_true", help="no progress bar")
    exh.add_argument("--seeds", type=_at_least(1), default=3,
                     help="seeds to train every subset on")
    exh.add_argument("--first-seed", type=_at_least(0), default=1000,
                     help="first seed (none of the analysis' own seeds)")
    exh.add_argument("--threads", type=_at_least(0), default=0,
                     help="CPU threads (0: all cores but one)")
    grp = command("group", "groupings from evidence you already have: an affinity matrix or a "
                           "table of trained subsets")
    grp.add_argument("evidence", type=Path,
                     help="CSV: a TxT matrix (header row and first column = task names; row = "
                          "source, column = target) or a subset table (header = task names; a "
                          "row per trained subset; a cell = that task's gain over training "
                          "alone in it, empty where it is not a member)")
    grp.add_argument("--k", type=int, nargs="+", required=True, help="numbers of groups")
    grp.add_argument("--loss", action="store_true",
                     help="the subset table's cells are validation losses, not gains")
    grp.add_argument("--rule", help="pair rule: sum, mean or a number beta (default: a "
                                    "surrogate fitted to the table's larger subsets, else 0.5)")
    grp.add_argument("--json", action="store_true", help="print the groupings entries as JSON")
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--server", help="the service's URL (default: TASKAFFINITY_SERVER, else "
                                         "http://127.0.0.1:8000); the bearer token is "
                                         "TASKAFFINITY_TOKEN")
    submit = command("submit", "queue a task set on the service (a local data file is "
                               "uploaded first)", parents=[server])
    submit.add_argument("taskset", type=Path, help="task-set file (YAML or JSON)")
    submit.add_argument("--wait", action="store_true",
                        help="follow the job to its end and print what to train")
    status = command("status", "a job's status, stage and progress", parents=[server])
    status.add_argument("job", help="job id")
    fetch = command("fetch", "write a succeeded job's result.json, matrices and report",
                    parents=[server])
    fetch.add_argument("job", help="job id")
    fetch.add_argument("--out", type=Path, required=True, help="output folder")
    cancel = command("cancel", "cancel a queued or running job", parents=[server])
    cancel.add_argument("job", help="job id")
    score = command("score", "score groupings against an exhaustive table")
    score.add_argument("table", type=Path, help="exhaustive.json from `affinity exhaustive`")
    score.add_argument("--result", type=Path, help="result.json whose groupings to score")
    for register in _registrations():
        HANDLERS.update(register(command))
    return parser


def _device(name: str):
    """The torch device of ``--device``, or None (after saying why) when there is none."""
    from affinity.models import resolve_device

    try:
        return resolve_device(name)
    except (ValueError, RuntimeError) as exc:
        print(f"--device: {exc}", file=sys.stderr)
        return None


def _run(args: argparse.Namespace) -> int:
    from affinity.header import check_header
    from affinity.taskset import load_taskset

    # the document and the data's header first: a task set that names what is not there is
    # refused before torch and the plotting libraries load
    taskset = load_taskset(args.taskset)
    check_header(taskset, args.taskset.resolve().parent)

    from affinity.analysis import analyze
    from affinity.display import ProgressDisplay
    from affinity.report import write_report
    from affinity.threads import limited_threads
    from affinity.tracking import log_to_mlflow

    if (device := _device(args.device)) is None:
        return 2
    if args.mlflow and importlib.util.find_spec("mlflow") is None:
        print("--mlflow needs MLflow: pip install 'taskaffinity[mlflow]'", file=sys.stderr)
        return 2
    with limited_threads(args.threads or None), \
            ProgressDisplay("run", enabled=not args.quiet) as display:
        result = analyze(taskset, base_dir=args.taskset.resolve().parent, device=device,
                         progress=display.show)
    path = result.write(args.out)
    report = write_report(result, args.out)
    _print_recommendation(result)
    cost = result.meta.cost
    print(f"wrote {path} and {report} ({cost.seconds:.1f} s, {cost.training_runs:.1f} "
          f"of {cost.budget:.1f} training runs)")
    if args.mlflow:
        run_id = log_to_mlflow(result, args.out, args.mlflow_experiment)
        print(f"logged to MLflow run {run_id}")
    return 0


def _print_recommendation(result: Result) -> None:
    """The result's warnings (on stderr), the verdict, a table of what to train for each k
    beside the best measured groups and their comparison, then each primary's auxiliary
    finding."""
    from rich.console import Console
    from rich.table import Table

    from affinity.verdict import group_lines, is_the_baseline

    for warning in result.meta.warnings:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    print(result.verdict, flush=True)
    table = Table(title="what to train for each number of groups k", title_justify="left")
    for column in ("k", "train", "groups", "best measured groups",
                   "vs the better baseline (95%, fresh seeds)"):
        table.add_column(column, overflow="fold")
    for entry in result.groupings:
        table.add_row(str(entry.k), entry.kind.replace("_", "-"),
                      "\n".join(group_lines(entry)),
                      "\n".join(", ".join(g) for g in entry.best_groups or []) or "-",
                      _lead(entry, is_the_baseline(entry)))
    console = Console(width=max(100, Console().width))
    console.print(table)
    for primary, choice in (result.verification.auxiliary if result.verification else {}).items():
        console.print(f"auxiliary, {primary}: {choice.verdict}", highlight=False)


def _lead(entry: GroupingEntry, same: bool) -> str:
    """How a groupings entry's best measured groups compare with the better baseline."""
    base = (entry.baseline or "").replace("_", "-")
    if entry.interval and entry.improvement is not None:
        lo, hi = entry.interval
        beyond = ", better beyond noise" if entry.significant else \
            ", worse beyond noise" if entry.worse_beyond_noise else ", within noise"
        return (f"{100 * entry.improvement:+.1f}% ({100 * lo:+.1f}% to {100 * hi:+.1f}%) "
                f"vs {base}{beyond}")
    if same:
        return "they are the better baseline"
    if entry.improvement is not None:
        return f"{100 * entry.improvement:+.1f}% vs {base} (no interval)"
    if entry.best_expected_improvement is not None:
        return (f"{100 * entry.best_expected_improvement:+.1f}% vs {base} expected "
                "(no fresh seed)")
    return "not measured" if not base else f"no candidate measured; {base} is the better one"


def _job_line(job: dict) -> str:
    """Id, status, progress and stage (where it says more than the status), then any error."""
    stage = "" if job["stage"] in (None, job["status"]) else f"  {job['stage']}"
    line = f"{job['id']}  {job['status']:9}  {job['progress']:5.1f}%{stage}"
    return line + (f"\n  error: {job['error']}" if job.get("error") else "")


def _client(args: argparse.Namespace):
    from affinity.client import Client

    return Client(args.server)


def _submit(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.submit(args.taskset)
        print(f"submitted {job['id']}: {client.url}/v1/jobs/{job['id']}", flush=True)
        if not args.wait:
            return 0
        job = client.wait(job)
        print(_job_line(job))
        if job["status"] != "succeeded":
            return 1
        _print_recommendation(client.result(job))
        print(f"report: {client.url}/v1/jobs/{job['id']}/report")
    return 0


def _status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        print(_job_line(client.job(args.job)))
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from affinity.result import Result

    with _client(args) as client:
        path = client.fetch(args.job, args.out)
        _print_recommendation(Result.read(path))
    print(f"wrote {path} and {args.out / 'report.html'}")
    return 0


def _cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        print(_job_line(client.cancel(args.job)))
    return 0


def _exhaustive(args: argparse.Namespace) -> int:
    from affinity.data import load_dataset
    from affinity.display import ProgressDisplay
    from affinity.exhaustive import exhaustive
    from affinity.taskset import load_taskset
    from affinity.threads import limited_threads

    taskset = load_taskset(args.taskset)
    if (device := _device(args.device)) is None:
        return 2
    data = load_dataset(taskset, args.taskset.resolve().parent).to(device)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    with limited_threads(args.threads or None), \
            ProgressDisplay("run", enabled=not args.quiet) as display:
        table = exhaustive(taskset, data, device, progress=display.show, seeds=seeds)
    print(f"wrote {table.write(args.out)} ({len(table.subsets)} subsets)")
    return 0


def _score(args: argparse.Namespace) -> int:
    from affinity.exhaustive import ExhaustiveTable

    try:
        table = ExhaustiveTable.read(args.table)
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidInput(f"cannot read {str(args.table)!r}: {exc}", "table") from None
    for k in range(1, len(table.tasks) + 1):
        groups, loss = table.optimum(k)
        print(f"optimum k={k}: total loss {loss:.6g}  groups {groups}")
    if args.result:
        try:
            doc = json.loads(args.result.read_text())
            unknown = {t for e in doc.get("groupings", []) for g in e["groups"] for t in g} \
                - set(table.tasks)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"cannot read {str(args.result)!r}: {exc}", "result") from None
        if unknown:
            raise InvalidInput(f"tasks {sorted(unknown)} are not in the table's {table.tasks}",
                               "result")
        for entry in doc.get("groupings", []):
            loss = table.grouping_loss(entry["groups"])
            print(f"result k={entry['k']}: total loss {loss:.6g}  regret "
                  f"{100 * table.regret(entry['groups']):.2f}% against the optimum of "
                  f"{len(entry['groups'])} groups  groups {entry['groups']}")
    return 0


def _rule(text: str | None) -> str | float | None:
    """``--rule``: sum, mean, a number (beta) or None (the default)."""
    from affinity.evidence import InvalidEvidence

    if text is None or text in ("sum", "mean"):
        return text
    try:
        return float(text)
    except ValueError:
        raise InvalidEvidence(f"--rule: sum, mean or a number; got {text!r}") from None


def _group(args: argparse.Namespace) -> int:
    from affinity.evidence import group

    entries = group(args.evidence, args.k, loss=args.loss, rule=_rule(args.rule))
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    for entry in entries:
        print(f"k={entry['k']}: {' | '.join(', '.join(g) for g in entry['groups'])}  "
              f"(predicted total gain {entry['total_predicted_gain']:+.4g}, rule "
              f"{entry['rule']})")
    return 0


HANDLERS: dict[str, Handler] = {
    "run": _run, "exhaustive": _exhaustive, "score": _score, "group": _group,
    "submit": _submit, "status": _status, "fetch": _fetch, "cancel": _cancel}
"""The commands by name; registered commands (``COMMANDS_GROUP``) are added as the parser
is built."""
INVALID_STATUS = (400, 404, 409, 413, 422)
"""Service answers that mean the request was wrong (exit 2), not that the service failed."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return HANDLERS[args.command](args)
    except InvalidInput as exc:
        print(f"invalid {exc.what}: {exc}", file=sys.stderr)
        return 2
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if exc.status in INVALID_STATUS else 1
    except Exception as exc:  # noqa: BLE001 - the CLI's contract is exit code 1 on failure
        log = _crash_log(args)
        print(f"error: affinity {args.command} failed: {crash_line(exc, str(log))}",
              file=sys.stderr)
        return 1


def _crash_log(args: argparse.Namespace) -> Path:
    """The traceback of the exception being handled, written to ``error.log`` in the run's
    ``--out`` folder (a temporary file for other commands or where that cannot be written)."""
    text = traceback.format_exc()
    out = getattr(args, "out", None)
    if out is not None:
        try:
            Path(out).mkdir(parents=True, exist_ok=True)
            (path := Path(out) / "error.log").write_text(text)
            return path
        except OSError:
            pass
    fd, name = tempfile.mkstemp(prefix="affinity-error-", suffix=".log")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return Path(name)


if __name__ == "__main__":
    sys.exit(main())
