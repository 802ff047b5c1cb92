"""Shared fixtures: fixed seeds, the test device, and small real data sets built from digits."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.datasets import load_digits

DEVICE = torch.device(os.environ.get("PYTEST_TORCH_DEVICE", "cpu"))


@pytest.fixture(autouse=True)
def _fixed_seeds() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def device() -> torch.device:
    return DEVICE


def digits_frame(n_rows: int | None = None) -> pd.DataFrame:
    """Digits pixels plus labels: one-vs-rest columns, 'label', 'parity' and 'ink' (regression)."""
    digits = load_digits()
    frame = pd.DataFrame(digits.data, columns=[f"pixel_{i}" for i in range(64)])
    for d in range(10):
        frame[f"digit_{d}"] = (digits.target == d).astype(int)
    frame["label"] = [f"d{t}" for t in digits.target]
    frame["parity"] = np.where(digits.target % 2 == 0, "even", "odd")
    frame["ink"] = digits.data.sum(axis=1)
    return frame.iloc[:n_rows] if n_rows else frame


def write_taskset(folder: Path, doc: dict, name: str = "taskset.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(doc) if name.endswith(".yaml") else json.dumps(doc))
    return path


FAST_TRAINING = {"epochs": 2, "batch_size": 128}
FAST_PROBE = {"seeds": 1, "transfer_steps": 20}


def pair_beside_the_rest() -> np.ndarray:
    """A 4-task affinity (row = source, column = target): tasks 0 and 1 help each other and are
    hurt by 2 and 3, which do well in the whole set (sum rule: 0.9 each there). The whole set
    plus (0, 1) is the best k = 2 beside it; no third group helps."""
    a = np.zeros((4, 4))
    a[0, 1] = a[1, 0] = 1.0
    a[2:, :2] = -1.0
    a[:2, 2:] = 0.2
    a[2, 3] = a[3, 2] = 0.5
    return a
