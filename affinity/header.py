"""A task set against its data's header: the file, its columns (or NPZ arrays) and the
columns the task set names, checked without reading the rows or importing torch, so that a
task set that names what is not there is refused in well under a second.

``data.load_dataset`` runs the same checks on the loaded data (and then the values').
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

from affinity.taskset import InvalidTaskSet, TaskSet, did_you_mean

DIGITS_PIXELS = [f"pixel_{i}" for i in range(64)]
DIGITS_COLUMNS = DIGITS_PIXELS + [f"digit_{d}" for d in range(10)]
"""The columns of ``builtin: digits``: 64 pixels and ten one-vs-rest labels."""


def resolve_path(taskset: TaskSet, base_dir: Path, root: str | Path | None,
                 datasets: dict[str, Path]) -> Path:
    """The data file of a task set's ``data.path`` or ``data.dataset`` (confined to ``root``
    when given), refused when it is missing or of an unknown format."""
    spec = taskset.data
    if spec.dataset is not None:
        if spec.dataset not in datasets:
            raise InvalidTaskSet(f"data.dataset: unknown dataset {spec.dataset!r}")
        path = datasets[spec.dataset]
    else:
        assert spec.path is not None  # the task set names exactly one source
        path = (base_dir / spec.path).resolve()
        if root is not None and not path.is_relative_to(Path(root).resolve()):
            raise InvalidTaskSet(f"data.path: {spec.path!r} lies outside the data root")
    if not path.is_file():
        raise InvalidTaskSet(f"data.path: file {spec.path!r} not found")
    if path.suffix.lower() not in (".csv", ".parquet", ".pq", ".npz"):
        raise InvalidTaskSet(f"data.path: unsupported format {path.suffix!r}; "
                             "use .csv, .parquet or .npz")
    return path


def check_columns(columns: list[str], taskset: TaskSet, what: str,
                  default_features: list[str] | None = None) -> list[str]:
    """The feature columns of a table with these ``columns``, once every column the task set
    names is there (``what`` names the table in errors)."""
    spec = taskset.data
    for i, t in enumerate(taskset.tasks):
        if t.source not in columns:
            raise InvalidTaskSet(f"tasks[{i}].column: column {t.source!r} not found in {what}"
                                 + _columns_hint(t.source, columns))
    if spec.split_column and spec.split_column not in columns:
        raise InvalidTaskSet(f"data.split_column: column {spec.split_column!r} not found in {what}"
                             + _columns_hint(spec.split_column, columns))
    used = {t.source for t in taskset.tasks} | {spec.split_column}
    features = spec.features or default_features or [c for c in columns if c not in used]
    if not features:
        raise InvalidTaskSet(f"data.features: {what} has no feature columns left")
    for i, f in enumerate(features):
        field = f"data.features[{i}]" if spec.features else "data.features"
        if f not in columns:
            raise InvalidTaskSet(f"{field}: column {f!r} not found in {what}"
                                 + _columns_hint(f, columns))
        if f in used:
            raise InvalidTaskSet(f"{field}: column {f!r} is a task or split column")
    return features


def check_arrays(names: list[str], taskset: TaskSet, what: str) -> None:
    """An NPZ file with arrays ``names`` holds ``X`` and every array the task set names."""
    spec = taskset.data
    if spec.features is not None:
        raise InvalidTaskSet("data.features: not supported for NPZ data (features are array X)")
    if "X" not in names:
        raise InvalidTaskSet(f"data.path: {what} has no array 'X'")
    for i, t in enumerate(taskset.tasks):
        if t.source not in names:
            raise InvalidTaskSet(f"tasks[{i}].column: array {t.source!r} not found in {what}")
    if spec.split_column and spec.split_column not in names:
        raise InvalidTaskSet(f"data.split_column: array {spec.split_column!r} not found")


def check_header(taskset: TaskSet, base_dir: Path) -> None:
    """The checks above on the header of the task set's data file (or the bundled set)."""
    spec = taskset.data
    if spec.in_memory or spec.dataset is not None:
        return  # Python's data, or an upload only the service knows
    if spec.builtin is not None:
        check_columns(DIGITS_COLUMNS, taskset, f"builtin {spec.builtin!r}", DIGITS_PIXELS)
        return
    path = resolve_path(taskset, base_dir, None, {})
    what = repr(path.name)
    try:
        if path.suffix.lower() == ".npz":
            with zipfile.ZipFile(path) as archive:
                names = [n.removesuffix(".npy") for n in archive.namelist()]
            check_arrays(names, taskset, what)
            return
        if path.suffix.lower() == ".csv":
            with path.open(newline="") as fh:
                columns = next(csv.reader(fh), [])
        else:
            import pyarrow.parquet as pq

            columns = list(pq.read_schema(path).names)
    except (OSError, UnicodeDecodeError, zipfile.BadZipFile, csv.Error) as exc:
        raise InvalidTaskSet(f"data.path: cannot read {path.name!r}: {exc}") from None
    except Exception as exc:  # pyarrow raises its own types for a malformed file
        raise InvalidTaskSet(f"data.path: cannot read {path.name!r}: {exc}") from None
    check_columns(columns, taskset, what)


SHOWN_COLUMNS = 12


def _columns_hint(name: str, columns: list[str]) -> str:
    """The closest column to a missing ``name`` and the columns there are (the first
    ``SHOWN_COLUMNS``), for an error message."""
    listed = ", ".join(columns[:SHOWN_COLUMNS]) + (f", ... ({len(columns)} columns)"
                                                   if len(columns) > SHOWN_COLUMNS else "")
    return did_you_mean(name, columns) + f"; its columns: {listed}"
