"""Data from Python: tensors, a ``torch.utils.data.Dataset`` or a ``DataLoader``, for
``analyze(taskset, data=affinity.tensors(taskset, train, val))``.

Each split is one of
- ``(x, {task: y})``: rows shared by the tasks; ``y`` of shape (N,) or (N, *shape), NaN
  where a row has no label for the task (a task left out has no label on these rows);
- ``{task: (x, y)}``: every task with rows of its own (tasks labelled on different rows);
- a ``Dataset`` whose items, or a ``DataLoader`` whose batches, are ``(x, {task: y})``.

A Dataset or DataLoader is read once, into memory: the probes train many networks on the same
rows, in lockstep, so every network sees the rows of its own seeded shuffles (the memory plan
then sizes the stacks to what is left). Inputs are used as given (no standardisation: your
network expects your preprocessing). Scalar targets are encoded as from a file (binary 0/1,
multiclass classes, regression standardised on the training rows); a target with a shape
(a per-pixel map) is used as given, scored by its task's loss over every element.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from affinity.data import Dataset, _encode, _Raw, _split
from affinity.task_types import TaskInfo
from affinity.taskset import InvalidTaskSet, TaskSet, TaskSpec

Split = Any  # (x, {task: y}) | {task: (x, y)} | Dataset | DataLoader
READ_BATCH = 512  # items per batch when a Dataset is read


def tensors(taskset: TaskSet, train: Split, val: Split | None = None) -> Dataset:
    """The task set's tasks on in-memory data (see the module docstring). Without ``val``,
    ``probe.val_fraction`` of the training rows are held out (seeded). InvalidTaskSet naming
    ``train``/``val`` and the task on bad input."""
    names = taskset.task_names
    x, targets = _rows(train, names, "train")
    if val is None:
        train_rows, val_rows = _split(_Raw(np.zeros(len(x)), {}, None), taskset)
    else:
        x_val, val_targets = _rows(val, names, "val")
        if x_val.shape[1:] != x.shape[1:]:
            raise InvalidTaskSet(f"val: inputs of shape {tuple(x_val.shape[1:])} a row; "
                                 f"train has {tuple(x.shape[1:])}")
        train_rows, val_rows = np.arange(len(x)), np.arange(len(x), len(x) + len(x_val))
        x = torch.cat([x, x_val])
        targets = {t: _cat(targets[t], val_targets[t]) for t in names}
    tasks, columns = [], []
    for i, spec in enumerate(taskset.tasks):
        info, y = _target(targets[spec.name], spec, i, train_rows,
                          taskset.data.standardize.targets)
        if np.isnan(y[val_rows].reshape(len(val_rows), -1)[:, 0]).all():
            raise InvalidTaskSet(f"tasks[{i}]: task {spec.name!r} has no label on a "
                                 "validation row")
        tasks.append(info)
        columns.append(y.reshape(len(y), -1))
    y_all = torch.as_tensor(np.concatenate(columns, axis=1), dtype=torch.float32)
    x = x.float()
    return Dataset(tuple(tasks), x[train_rows], y_all[train_rows], x[val_rows],
                   y_all[val_rows])


def _rows(split: Split, names: list[str],
          field: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Inputs (N, ...) and every task's targets (N, ...), NaN where a row has no label."""
    if isinstance(split, TorchDataset) and not isinstance(split, DataLoader):
        split = DataLoader(split, batch_size=READ_BATCH)
    if isinstance(split, DataLoader):
        return _shared(*_read(split, field), names, field)
    if isinstance(split, tuple) and len(split) == 2 and isinstance(split[1], Mapping):
        return _shared(_tensor(split[0], f"{field}[0]"), split[1], names, field)
    if isinstance(split, Mapping):
        return _own_rows(split, names, field)
    raise InvalidTaskSet(f"{field}: give (x, {{task: y}}), {{task: (x, y)}}, a torch Dataset or "
                         f"a DataLoader; got {type(split).__name__}")


def _read(loader: Iterable[Any], field: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    xs: list[torch.Tensor] = []
    ys: dict[str, list[torch.Tensor]] = {}
    for n, batch in enumerate(loader):
        if not (isinstance(batch, list | tuple) and len(batch) == 2
                and isinstance(batch[1], Mapping)):
            raise InvalidTaskSet(f"{field}: batch {n} is not (x, {{task: y}}); got "
                                 f"{type(batch).__name__}")
        xs.append(_tensor(batch[0], f"{field}: batch {n}'s x"))
        for task, y in batch[1].items():
            ys.setdefault(task, []).append(_tensor(y, f"{field}: batch {n}'s {task!r}"))
    if not xs:
        raise InvalidTaskSet(f"{field}: the data has no rows")
    return torch.cat(xs), {t: torch.cat(v) for t, v in ys.items()}


def _shared(x: torch.Tensor, targets: Mapping[str, Any], names: list[str],
            field: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    unknown = [t for t in targets if t not in names]
    if unknown:
        raise InvalidTaskSet(f"{field}: {unknown[0]!r} is not a task of the task set "
                             f"({', '.join(names)})")
    out = {}
    for t in names:
        if t not in targets:
            continue
        y = _tensor(targets[t], f"{field}[{t!r}]").double()
        if len(y) != len(x):
            raise InvalidTaskSet(f"{field}[{t!r}]: {len(y)} rows of targets for {len(x)} rows "
                                 "of inputs")
        out[t] = y
    if not out:
        raise InvalidTaskSet(f"{field}: no task has targets")
    for t in names:
        out.setdefault(t, _unlabelled(len(x)))
    return x, out


def _unlabelled(n: int) -> torch.Tensor:
    """Targets of a task with no label on ``n`` rows (its shape follows where it has some)."""
    return torch.full((n,), torch.nan, dtype=torch.float64)


def _cat(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Two splits' targets of a task, one of them possibly all unlabelled (shape (N,))."""
    if a.shape[1:] != b.shape[1:]:
        if a.dim() == 1 and a.isnan().all():
            a = a.reshape(-1, *[1] * (b.dim() - 1)).expand(-1, *b.shape[1:])
        elif b.dim() == 1 and b.isnan().all():
            b = b.reshape(-1, *[1] * (a.dim() - 1)).expand(-1, *a.shape[1:])
        else:
            raise InvalidTaskSet(f"val: targets of shape {tuple(b.shape[1:])} a row; train "
                                 f"has {tuple(a.shape[1:])}")
    return torch.cat([a, b])


def _own_rows(split: Mapping[str, Any], names: list[str],
              field: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Tasks with rows of their own, stacked: each task labelled on its rows only."""
    parts = {}
    for t, item in split.items():
        if t not in names:
            raise InvalidTaskSet(f"{field}: {t!r} is not a task of the task set "
                                 f"({', '.join(names)})")
        if not (isinstance(item, tuple) and len(item) == 2):
            raise InvalidTaskSet(f"{field}[{t!r}]: give (x, y) for a task with rows of its own")
        x, y = _tensor(item[0], f"{field}[{t!r}][0]"), _tensor(item[1], f"{field}[{t!r}][1]")
        if len(x) != len(y):
            raise InvalidTaskSet(f"{field}[{t!r}]: {len(y)} targets for {len(x)} input rows")
        parts[t] = (x, y.double())
    shapes = {tuple(x.shape[1:]) for x, _ in parts.values()}
    if len(shapes) > 1:
        raise InvalidTaskSet(f"{field}: the tasks' inputs differ in shape ({sorted(shapes)})")
    if not parts:
        raise InvalidTaskSet(f"{field}: no task has rows")
    x = torch.cat([x for x, _ in parts.values()])
    out, start = {}, 0
    for t, (rows, y) in parts.items():
        full = torch.full((len(x), *y.shape[1:]), torch.nan, dtype=torch.float64)
        full[start:start + len(rows)] = y
        out[t] = full
        start += len(rows)
    for t in names:
        out.setdefault(t, _unlabelled(len(x)))
    return x, out


def _tensor(value: Any, field: str) -> torch.Tensor:
    try:
        t = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InvalidTaskSet(f"{field}: not an array ({exc})") from None
    if t.dim() == 0:
        raise InvalidTaskSet(f"{field}: needs rows first; got a scalar")
    if not (t.is_floating_point() or t.dtype in (torch.bool, torch.int8, torch.int16,
                                                   torch.int32, torch.int64, torch.uint8)):
        raise InvalidTaskSet(f"{field}: must be numeric; got {t.dtype}")
    return t.detach().cpu()


def _target(y: torch.Tensor, spec: TaskSpec, i: int, train: np.ndarray,
            standardize: bool) -> tuple[TaskInfo, np.ndarray]:
    """Encode one task's targets: as from a file when scalar, else as given."""
    values = y.numpy()
    if values.ndim == 1:
        return _encode(values, spec, i, train, standardize)
    flat = values.reshape(len(values), -1)
    missing = np.isnan(flat)
    partial = missing.any(axis=1) & ~missing.all(axis=1)
    if partial.any():
        raise InvalidTaskSet(f"tasks[{i}]: task {spec.name!r} has NaN in part of row "
                             f"{int(np.argmax(partial))}'s target; a row is either labelled "
                             "or all NaN")
    if (~missing[train, 0]).sum() < 2:
        raise InvalidTaskSet(f"tasks[{i}]: task {spec.name!r} has fewer than 2 labelled "
                             "training rows")
    if not np.isfinite(flat[~missing[:, 0]]).all():
        raise InvalidTaskSet(f"tasks[{i}]: task {spec.name!r} has infinite targets")
    if spec.type == "multiclass":
        raise InvalidTaskSet(f"tasks[{i}].type: a multiclass target of shape "
                             f"{values.shape[1:]} needs its own head and loss "
                             "(analyze(heads=..., losses=...)) with type regression")
    shape = tuple(values.shape[1:])
    return TaskInfo(spec.name, spec.source, spec.type, int(flat.shape[1]), shape=shape), values
