"""Load a task set's data: CSV, Parquet, NPZ or a bundled set; split, encode, standardise.

Labels of all tasks are kept in one float matrix ``y`` of shape (n_rows, n_columns): one
column per task with a scalar label, or ``prod(shape)`` columns for a task whose target has a
shape (a per-pixel map, from ``affinity.tensors``); NaN means "no label for this task on this
row", and such rows still train the other tasks. Binary labels are 0/1, multiclass labels are
class indices. By the task set's ``data.standardize`` (on by default), features are
standardised with the training rows' statistics per column (per channel of an image array,
never per pixel) and scalar regression targets likewise.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from affinity.header import DIGITS_PIXELS, check_arrays, check_columns, resolve_path
from affinity.task_types import TaskInfo, label_mask
from affinity.taskset import InvalidTaskSet, TaskSet, TaskSpec

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


@dataclass(frozen=True)
class Dataset:
    """Standardised training and validation arrays for every task of a task set."""

    tasks: tuple[TaskInfo, ...]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    warnings: tuple[str, ...] = ()
    """What in the data looks like a mistake but is not an error (e.g. a feature that gives a
    task's label away); the result and the report repeat them."""

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    def labelled(self, y: torch.Tensor) -> torch.Tensor:
        """``label_mask`` of labels ``y`` of this data."""
        return label_mask(y, self.tasks)

    def to(self, device: torch.device | str) -> Dataset:
        return replace(
            self,
            **{k: getattr(self, k).to(device) for k in ("x_train", "y_train", "x_val", "y_val")},
        )


@dataclass
class _Raw:
    x: np.ndarray  # (n_rows, ...) features
    labels: dict[str, np.ndarray]  # task source column -> 1-D labels
    split: np.ndarray | None  # 1-D split markers
    warnings: tuple[str, ...] = ()


MANY_CLASSES = 10
MIN_ROWS_PER_CLASS = 5
"""A multiclass task with more than MANY_CLASSES classes and fewer labelled rows than this a
class on average is refused: it is most likely a numeric target declared multiclass."""
LEAK_CORRELATION = 0.98
LEAK_ROWS = 10_000
"""A default feature this correlated with a task's labels (over its first LEAK_ROWS labelled
rows) is reported as a likely leak."""


def load_dataset(taskset: TaskSet, base_dir: str | Path | None = None,
                 root: str | Path | None = None,
                 datasets: dict[str, Path] | None = None) -> Dataset:
    """Load, split, encode and standardise the data of ``taskset``.

    ``data.path`` is resolved against ``base_dir`` (default: the folder of the task set's
    file when it was read by ``load_taskset``, else the working folder); when ``root`` is
    given the file must lie inside it (no ``..`` or symlink escape). ``datasets`` maps
    uploaded dataset ids to files.
    """
    spec = taskset.data
    if spec.in_memory:
        raise InvalidTaskSet("data.in_memory: this task set's data comes from Python "
                             "(affinity.tensors); give data.path, data.dataset or data.builtin "
                             "to load it here")
    if spec.builtin is not None:
        raw = _load_builtin(spec.builtin, taskset)
    else:
        base = Path(base_dir) if base_dir is not None else taskset.folder or Path(".")
        path = resolve_path(taskset, base, root, datasets or {})
        raw = _load_npz(path, taskset) if path.suffix == ".npz" else _load_table(path, taskset)
    if taskset.model.backbone == "cnn" and raw.x.ndim != 4:
        raise InvalidTaskSet(
            f"model.backbone: cnn needs image arrays of shape (N, C, H, W); "
            f"the data has shape {raw.x.shape}"
        )
    if not np.isfinite(raw.x).all():
        bad = int((~np.isfinite(raw.x)).reshape(len(raw.x), -1).any(axis=1).sum())
        raise InvalidTaskSet(f"data.features: {bad} rows have NaN or infinite feature values")
    train, val = _split(raw, taskset)
    scale = spec.standardize
    tasks, y = zip(*(_encode(raw.labels[t.source], t, i, train, scale.targets) for i, t in
                     enumerate(taskset.tasks)), strict=True)
    y = np.stack(y, axis=1)
    x = raw.x.astype(np.float64)
    x = _standardise(x, train) if scale.features else x
    for i, t in enumerate(taskset.tasks):
        if np.isnan(y[val, i]).all():
            raise InvalidTaskSet(f"tasks[{i}].column: task {t.name!r} has no label on a "
                                 f"validation row")
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    return Dataset(tuple(tasks), as_t(x[train]), as_t(y[train]), as_t(x[val]), as_t(y[val]),
                   raw.warnings)


@functools.cache
def _digits_frame() -> pd.DataFrame:
    """scikit-learn's digits: 64 pixel columns and ten one-vs-rest columns (read once)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    frame = pd.DataFrame(digits.data, columns=[f"pixel_{i}" for i in range(64)])
    for d in range(10):
        frame[f"digit_{d}"] = (digits.target == d).astype(np.int64)
    return frame


def _load_builtin(name: str, taskset: TaskSet) -> _Raw:
    frame = _digits_frame().copy()
    # the label columns are never default features
    raw = _from_frame(frame, taskset, f"builtin {name!r}", default_features=DIGITS_PIXELS)
    if taskset.model.backbone == "cnn" and taskset.data.features is None:
        raw.x = raw.x.reshape(-1, 1, 8, 8)
    return raw


def _load_table(path: Path, taskset: TaskSet) -> _Raw:
    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(path)
        else:
            frame = pd.read_parquet(path)
    except Exception as exc:  # pandas/pyarrow raise many types for a malformed file
        raise InvalidTaskSet(f"data.path: cannot read {path.name!r}: {exc}") from None
    return _from_frame(frame, taskset, repr(path.name))


def _from_frame(frame: pd.DataFrame, taskset: TaskSet, what: str,
                default_features: list[str] | None = None) -> _Raw:
    spec = taskset.data
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if frame.empty:
        raise InvalidTaskSet(f"data.path: {what} has no rows (columns: "
                             f"{', '.join(columns[:8]) or 'none'})")
    features = check_columns(columns, taskset, what, default_features)
    for i, f in enumerate(features):
        field = f"data.features[{i}]" if spec.features else "data.features"
        if not pd.api.types.is_numeric_dtype(frame[f]):
            hint = "" if spec.features else (" (features default to every column not used by "
                                             "a task; list data.features to choose)")
            raise InvalidTaskSet(f"{field}: column {f!r} is not numeric{hint}")
    missing = [f for f in features if frame[f].isna().any()]
    if missing:
        names = ", ".join(repr(f) for f in missing[:5]) + (" …" if len(missing) > 5 else "")
        if spec.features:
            raise InvalidTaskSet(f"data.features[{features.index(missing[0])}]: column "
                                 f"{missing[0]!r} has {int(frame[missing[0]].isna().sum())} "
                                 "missing values; features must be complete")
        raise InvalidTaskSet(
            f"data.features: {names} {'has' if len(missing) == 1 else 'have'} missing values. "
            "Features default to every column not used by a task or the split, so a target "
            "left out of tasks becomes a feature (its labels leak into the inputs): make it a "
            "task, or list data.features")
    x = frame[features].to_numpy(dtype=np.float64)
    labels = {t.source: frame[t.source].to_numpy() for t in taskset.tasks}
    split = frame[spec.split_column].to_numpy() if spec.split_column else None
    warnings = () if spec.features or default_features else _leaks(frame, features, taskset)
    return _Raw(x, labels, split, warnings)


def _leaks(frame: pd.DataFrame, features: list[str], taskset: TaskSet) -> tuple[str, ...]:
    """Default features that all but give a task's label away (|correlation| at least
    LEAK_CORRELATION over its labelled rows): most likely a sibling target."""
    found = []
    for t in taskset.tasks:
        label = pd.to_numeric(frame[t.source], errors="coerce")
        rows = np.flatnonzero(label.notna().to_numpy())[:LEAK_ROWS]
        if len(rows) < 3 or label.iloc[rows].nunique() < 2:
            continue
        values = frame.iloc[rows][features].to_numpy(dtype=np.float64)
        target = label.iloc[rows].to_numpy(dtype=np.float64)
        spread = values.std(axis=0)
        ok = spread > 1e-12
        corr = np.zeros(len(features))
        centred = (values[:, ok] - values[:, ok].mean(0)) * (target - target.mean())[:, None]
        corr[ok] = centred.mean(0) / (spread[ok] * target.std())
        for j in np.flatnonzero(np.abs(corr) >= LEAK_CORRELATION):
            found.append(f"data.features: column {features[j]!r} has correlation "
                         f"{corr[j]:.2f} with task {t.name!r}'s labels: if it is a target, "
                         "list data.features without it")
    return tuple(found)


def _load_npz(path: Path, taskset: TaskSet) -> _Raw:
    spec = taskset.data
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        raise InvalidTaskSet(f"data.path: cannot read {path.name!r}: {exc}") from None
    except Exception as exc:
        raise InvalidTaskSet(f"data.path: {path.name!r} is not a valid NPZ file: {exc}") from None
    check_arrays(list(arrays), taskset, repr(path.name))
    x = arrays["X"]
    if x.ndim < 2 or not np.issubdtype(x.dtype, np.number):
        raise InvalidTaskSet(f"data.path: array 'X' must be numeric with rows first; "
                             f"got shape {x.shape}, dtype {x.dtype}")
    if len(x) == 0:
        raise InvalidTaskSet(f"data.path: {path.name!r} has no rows (array 'X' is empty)")
    labels = {}
    for i, t in enumerate(taskset.tasks):
        if arrays[t.source].shape != (len(x),):
            raise InvalidTaskSet(f"tasks[{i}].column: array {t.source!r} must have shape "
                                 f"({len(x)},); got {arrays[t.source].shape}")
        labels[t.source] = arrays[t.source]
    split = None
    if spec.split_column:
        split = arrays[spec.split_column]
        if split.shape != (len(x),):
            raise InvalidTaskSet(f"data.split_column: array must have shape ({len(x)},)")
    return _Raw(x.astype(np.float64), labels, split)


def _split(raw: _Raw, taskset: TaskSet) -> tuple[np.ndarray, np.ndarray]:
    n = len(raw.x)
    if raw.split is None:
        n_val = max(1, round(n * taskset.probe.val_fraction))
        if n - n_val < 2:
            raise InvalidTaskSet(f"data: {n} rows are too few to split into train and val")
        order = np.random.default_rng(0).permutation(n)
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    marks = np.array([SPLIT_NAMES.get(str(v).strip().lower(), "") for v in raw.split])
    if (marks == "").any():
        row = int(np.argmax(marks == ""))
        raise InvalidTaskSet(f"data.split_column: unknown value {raw.split[row]!r} in row {row} "
                             "(expected train, val or test)")
    train, val = np.flatnonzero(marks == "train"), np.flatnonzero(marks == "val")
    if len(train) < 2 or len(val) < 1:
        raise InvalidTaskSet("data.split_column: needs at least 2 train rows and 1 val row; "
                             f"got {len(train)} and {len(val)}")
    return train, val


def _missing(values: np.ndarray) -> np.ndarray:
    miss = np.asarray(pd.isna(values), dtype=bool)
    if values.dtype.kind in "OUS":  # empty strings in object, unicode or bytes arrays
        miss |= np.array([isinstance(v, str | bytes) and not v.strip() for v in values.tolist()],
                         dtype=bool)
    return miss


def _encode(values: np.ndarray, task: TaskSpec, i: int, train: np.ndarray,
            standardize: bool = True) -> tuple[TaskInfo, np.ndarray]:
    """Turn one label column into floats (NaN = missing) and describe the task; regression
    targets are standardised with the training rows' statistics when ``standardize``."""
    miss = _missing(values)
    field = f"tasks[{i}]"
    if (~miss[train]).sum() < 2:
        raise InvalidTaskSet(f"{field}.column: task {task.name!r} has fewer than 2 labelled "
                             "training rows")
    y = np.full(len(values), np.nan)
    if task.type == "regression":
        try:
            target = values[~miss].astype(np.float64)
        except (TypeError, ValueError):
            raise InvalidTaskSet(f"{field}.type: regression labels of {task.name!r} must be "
                                 "numeric") from None
        if not np.isfinite(target).all():
            raise InvalidTaskSet(f"{field}.column: task {task.name!r} has infinite labels")
        y[~miss] = target
        labelled = train[~miss[train]]
        mean, std = y[labelled].mean(), y[labelled].std()
        if std < 1e-12:
            raise InvalidTaskSet(f"{field}.column: regression target {task.name!r} is constant")
        return TaskInfo(task.name, task.source, task.type, 1), \
            (y - mean) / std if standardize else y
    present = values[~miss]
    if present.dtype.kind == "f" and np.all(present == np.round(present)):
        present = present.astype(np.int64)
    classes, codes = np.unique(present.astype(str) if present.dtype == object else present,
                               return_inverse=True)
    if len(classes) < 2:
        raise InvalidTaskSet(f"{field}.column: task {task.name!r} has a single class "
                             f"({classes[0].item()!r}); it needs at least 2")
    too_many = len(classes) > MANY_CLASSES and len(present) < MIN_ROWS_PER_CLASS * len(classes)
    if task.type == "binary" and len(classes) > 2:
        use = ("regression: a numeric target with many values (fewer than "
               f"{MIN_ROWS_PER_CLASS} labelled rows a class) is a regression task") \
            if too_many and present.dtype.kind in "iuf" else "multiclass"
        raise InvalidTaskSet(f"{field}.type: binary task {task.name!r} has {len(classes)} "
                             f"classes for {len(present)} labelled rows; use {use}")
    if too_many:
        raise InvalidTaskSet(
            f"{field}.type: multiclass task {task.name!r} has {len(classes)} classes for "
            f"{len(present)} labelled rows (fewer than {MIN_ROWS_PER_CLASS} a class): a numeric "
            "target with many values is a regression task")
    y[~miss] = codes
    n_out = 1 if task.type == "binary" else len(classes)
    return TaskInfo(task.name, task.source, task.type, n_out, tuple(c.item() for c in classes)), y


def _standardise(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance with training statistics: per feature, or per image channel."""
    axes = (0,) if x.ndim == 2 else (0, *range(2, x.ndim))
    mean = x[train].mean(axis=axes, keepdims=True)
    std = x[train].std(axis=axes, keepdims=True)
    return (x - mean) / np.where(std < 1e-12, 1.0, std)
