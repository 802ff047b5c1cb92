"""What a task type means: how a task's labels lie in the label matrix ``y`` (its columns,
NaN where a row has no label) and how its outputs are scored (BCE for binary, CE for
multiclass, MSE for regression, or the task's own loss).

``y`` has shape (n_rows, n_columns): one column per task with a scalar label, ``prod(shape)``
columns for a task whose target has a shape; binary labels are 0/1, multiclass labels class
indices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import prod

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TaskInfo:
    """One task as the model sees it.

    ``shape`` is the shape of one row's target (() for a scalar label), stored in
    ``prod(shape)`` columns of ``y``; ``n_outputs`` the head's outputs. ``head`` and ``loss``
    are the user's own (``analyze(heads=..., losses=...)``): ``head(width)`` builds a module
    mapping features (N, width) to outputs (N, *out_shape), ``loss(pred, target)`` gives
    per-row or elementwise losses (``reduction="none"``); None: a linear head and the
    type's loss.
    """

    name: str
    column: str
    type: str
    n_outputs: int
    classes: tuple | None = None
    shape: tuple[int, ...] = ()
    head: Callable[[int], torch.nn.Module] | None = None
    out_shape: tuple[int, ...] | None = None
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    @property
    def n_columns(self) -> int:
        return prod(self.shape)

    @property
    def outputs_shape(self) -> tuple[int, ...]:
        """One row's head output: ``out_shape`` of an own head, else the target's shape
        (multiclass: the class scores)."""
        if self.out_shape is not None:
            return self.out_shape
        return (self.n_outputs,) if self.type == "multiclass" else self.shape

    @property
    def shaped(self) -> bool:
        """Scored by the per-task path of ``TaskLosses`` (a target with a shape, or an own
        loss) rather than the batched scalar one."""
        return bool(self.shape) or self.loss is not None or self.head is not None


def column_starts(tasks: tuple[TaskInfo, ...]) -> list[int]:
    """The first column of each task in ``y``."""
    starts, offset = [], 0
    for t in tasks:
        starts.append(offset)
        offset += t.n_columns
    return starts


def label_mask(y: torch.Tensor, tasks: tuple[TaskInfo, ...]) -> torch.Tensor:
    """(..., rows, n_tasks) bool: whether each row has a label for each task (its target's
    first column is not NaN; ``tensors`` refuses targets that are NaN only in part)."""
    if y.shape[-1] == len(tasks):
        return ~torch.isnan(y)
    return ~torch.isnan(y[..., column_starts(tasks)])


class TaskLosses:
    """Masked per-task losses of head outputs: BCE (binary), CE (multiclass), MSE (regression),
    or the task's own loss; over every element of a target with a shape, mean per row.

    ``sums(out, y)`` takes ``out`` of shape (..., n_rows, n_outputs) and ``y`` of shape
    (n_rows, n_columns), or one per network (..., n_rows, n_columns), with NaN for missing
    labels; it returns the per-task loss sums of shape (..., n_tasks) and the label counts
    of shape (n_tasks,) or (..., n_tasks). ``__call__`` returns the means
    (0 for a task with no label in ``y``). Scalar tasks of the built-in types are scored
    together, a few batched operations for all of them.
    """

    def __init__(self, tasks: tuple[TaskInfo, ...]) -> None:
        self.tasks = tasks
        cols = column_starts(tasks)
        outs = [0]
        for t in tasks:
            outs.append(outs[-1] + t.n_outputs)
        plain = [i for i, t in enumerate(tasks) if not t.shaped]
        by_type = {k: [i for i in plain if tasks[i].type == k] for k in ("binary", "regression")}
        self.multiclass = [(i, cols[i], outs[i], tasks[i].n_outputs) for i in plain
                           if tasks[i].type == "multiclass"]
        self.shaped = [(i, cols[i], outs[i], t) for i, t in enumerate(tasks) if t.shaped]
        self.bin_cols = _as_slice([outs[i] for i in by_type["binary"]])
        self.reg_cols = _as_slice([outs[i] for i in by_type["regression"]])
        self.bin_y = _as_slice([cols[i] for i in by_type["binary"]])
        self.reg_y = _as_slice([cols[i] for i in by_type["regression"]])
        self.binary = _as_slice(by_type["binary"])
        self.regression = _as_slice(by_type["regression"])
        order = (by_type["binary"] + by_type["regression"] + [m[0] for m in self.multiclass]
                 + [m[0] for m in self.shaped])
        inverse = [order.index(i) for i in range(len(tasks))]
        self.inverse = None if inverse == sorted(inverse) else inverse

    def sums(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = label_mask(y, self.tasks)
        target = torch.nan_to_num(y)
        parts = []
        if self.binary != slice(0, 0):
            m, t = mask[..., self.binary], target[..., self.bin_y]
            loss = F.binary_cross_entropy_with_logits(
                out[..., self.bin_cols], t.expand(out.shape[:-1] + t.shape[-1:]),
                reduction="none")
            parts.append((loss * m).sum(-2))
        if self.regression != slice(0, 0):
            m, t = mask[..., self.regression], target[..., self.reg_y]
            parts.append((((out[..., self.reg_cols] - t) ** 2) * m).sum(-2))
        for i, col, start, n in self.multiclass:
            logp = torch.log_softmax(out[..., start:start + n], dim=-1)
            idx = target[..., col, None].long().expand(out.shape[:-1] + (1,))
            nll = -logp.gather(-1, idx).squeeze(-1)
            parts.append((nll * mask[..., i]).sum(-1, keepdim=True))
        for i, col, start, task in self.shaped:
            per_row = _row_losses(task, out[..., start:start + task.n_outputs],
                                  target[..., col:col + task.n_columns])
            parts.append((per_row * mask[..., i]).sum(-1, keepdim=True))
        sums = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        return (sums if self.inverse is None else sums[..., self.inverse]), mask.sum(-2)

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        sums, counts = self.sums(out, y)
        return sums / counts.clamp(min=1)


def _row_losses(task: TaskInfo, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """One loss a row (shape ``out.shape[:-1]``) of a task scored on its own: its own loss,
    or its type's, over the row's outputs and target reshaped to their shapes (a loss that
    returns more than one value a row is averaged over the rest)."""
    lead = out.shape[:-1]
    pred = out.reshape(-1, *task.outputs_shape)
    goal = target.expand(lead + target.shape[-1:]).reshape(-1, *task.shape)
    if task.loss is not None:
        values = task.loss(pred, goal)
    elif task.type == "binary":
        values = F.binary_cross_entropy_with_logits(pred, goal, reduction="none")
    elif task.type == "multiclass":
        values = F.cross_entropy(pred, goal.long(), reduction="none")
    else:
        values = (pred - goal) ** 2
    if values.dim() == 0 or values.shape[0] != len(pred):
        raise ValueError(f"the loss of task {task.name!r} must give one value a row or one "
                         f"an element (reduction='none'); got shape {tuple(values.shape)} for "
                         f"{len(pred)} rows")
    return values.reshape(len(pred), -1).mean(1).reshape(lead)


def _as_slice(index: list[int]) -> slice | list[int]:
    """A contiguous index list as a slice (cheaper to index and to differentiate through)."""
    if not index:
        return slice(0, 0)
    if index == list(range(index[0], index[-1] + 1)):
        return slice(index[0], index[-1] + 1)
    return index
