"""The referee: a small, separate trainer of one multi-task network, written from the training
recipe as `docs/taskset.md` defines it, not from the project's trainer, so that a bias of
`affinity/probes/` cannot hide in a benchmark's ground truth too.

The recipe, as documented:
- preprocessing by ``data.standardize``: each feature column (each channel of an image
  array) to zero mean and unit variance with the training rows' statistics, regression
  targets alike over their labelled training rows;
- a network trains on its own rows, those labelled for at least one of its tasks; an epoch is
  one pass over them in a fresh shuffle, in minibatches of ``batch_size`` (the last one
  shorter); a row's loss counts for the tasks it is labelled for, each task's loss the mean
  over its labelled rows of the batch (binary cross-entropy, cross-entropy, squared error),
  the network's loss their sum;
- the optimizer by name (Adam, AdamW, SGD with momentum), ``lr``, ``weight_decay``;
- after each epoch, each task's mean validation loss over its labelled validation rows; the
  network's score is their mean; it stops after ``patience`` epochs without a drop of more
  than ``min_delta`` times its first epoch's score, or after ``epochs``; its checkpoint is
  the epoch of its least score, and each task is scored there.

One network at a time, plain loops: slow, and meant to be obviously right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

RECIPE_DEFAULTS = {"epochs": 200, "batch_size": 128, "optimizer": "adam", "lr": 1e-3,
                   "momentum": 0.9, "weight_decay": 0.0, "patience": 5, "min_delta": 1e-4}


@dataclass
class Table:
    """Preprocessed data: features (rows, ...) and per task a label vector with NaN where a
    row has no label (class codes for multiclass, 0/1 for binary)."""

    x_train: np.ndarray
    x_val: np.ndarray
    y_train: dict[str, np.ndarray]
    y_val: dict[str, np.ndarray]
    types: dict[str, str]
    classes: dict[str, int]


def prepare(frame: pd.DataFrame, tasks: dict[str, str], features: Sequence[str],
            is_val: np.ndarray, standardize_features: bool = True,
            standardize_targets: bool = True, columns: dict[str, str] | None = None) -> Table:
    """A table from a frame: ``tasks`` maps task name to type, ``columns`` task name to its
    column (default: the name); ``is_val`` marks the validation rows."""
    columns = columns or {}
    x = frame[list(features)].to_numpy(dtype=np.float64)
    train = ~is_val
    if standardize_features:
        std = x[train].std(axis=0)
        x = (x - x[train].mean(axis=0)) / np.where(std < 1e-12, 1.0, std)
    y, classes = {}, {}
    for name, kind in tasks.items():
        raw = frame[columns.get(name, name)]
        known = raw.notna().to_numpy()
        values = np.full(len(frame), np.nan)
        if kind == "regression":
            values[known] = raw[known].to_numpy(dtype=np.float64)
            if standardize_targets:
                fit = values[train & known]
                values = (values - fit.mean()) / fit.std()
        else:
            codes, uniques = pd.factorize(raw[known], sort=True)
            values[known] = codes
            classes[name] = len(uniques)
        y[name] = values
    return Table(x[train], x[is_val], {k: v[train] for k, v in y.items()},
                 {k: v[is_val] for k, v in y.items()}, dict(tasks), classes)


class Network(nn.Module):
    def __init__(self, n_in: int, hidden: Sequence[int], outputs: dict[str, int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(n_in, h), nn.ReLU()]
            n_in = h
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.ModuleDict({t: nn.Linear(n_in, k) for t, k in outputs.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.trunk(x)
        return {t: head(h) for t, head in self.heads.items()}


def task_loss(kind: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean loss over the rows labelled for the task (``y`` has NaN elsewhere); 0 without."""
    known = ~torch.isnan(y)
    if not bool(known.any()):
        return out.sum() * 0.0
    out, y = out[known], y[known]
    if kind == "binary":
        return F.binary_cross_entropy_with_logits(out[:, 0], y)
    if kind == "multiclass":
        return F.cross_entropy(out, y.long())
    return F.mse_loss(out[:, 0], y)


def train(table: Table, group: Sequence[str], hidden: Sequence[int], recipe: dict,
          seed: int) -> dict[str, float]:
    """Train one network on the tasks of ``group`` by ``recipe``; each task's validation loss
    at the network's checkpoint."""
    r = {**RECIPE_DEFAULTS, **recipe}
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    outputs = {t: 1 if table.types[t] != "multiclass" else table.classes[t] for t in group}
    net = Network(table.x_train[0].size, hidden, outputs)
    if r["optimizer"] == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(net.parameters(), lr=r["lr"],
                                                     momentum=r["momentum"],
                                                     weight_decay=r["weight_decay"])
    else:
        cls = torch.optim.AdamW if r["optimizer"] == "adamw" else torch.optim.Adam
        opt = cls(net.parameters(), lr=r["lr"], weight_decay=r["weight_decay"])
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    x_tr, x_va = as_t(table.x_train).flatten(1), as_t(table.x_val).flatten(1)
    y_tr = {t: as_t(table.y_train[t]) for t in group}
    y_va = {t: as_t(table.y_val[t]) for t in group}
    own = np.flatnonzero(np.any([~np.isnan(table.y_train[t]) for t in group], axis=0))
    best, first, wait, kept = np.inf, None, 0, {}
    for _ in range(r["epochs"]):
        net.train()
        order = own[rng.permutation(len(own))]
        for start in range(0, len(order), r["batch_size"]):
            rows = torch.as_tensor(order[start:start + r["batch_size"]])
            out = net(x_tr[rows])
            loss = sum(task_loss(table.types[t], out[t], y_tr[t][rows]) for t in group)
            opt.zero_grad()
            loss.backward()  # type: ignore[union-attr]
            opt.step()
        net.eval()
        with torch.no_grad():
            out = net(x_va)
            val = {t: float(task_loss(table.types[t], out[t], y_va[t])) for t in group}
        score = float(np.mean(list(val.values())))
        first = score if first is None else first
        if score < best - r["min_delta"] * abs(first):
            best, wait, kept = score, 0, val
        else:
            wait += 1
            if wait >= r["patience"]:
                break
    return kept
