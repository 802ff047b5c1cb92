"""Memory planning: members train in chunks that fit the device, with the unsplit result."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import affinity.executor
from affinity.data import load_dataset
from affinity.executor import LocalExecutor
from affinity.memory import WEIGHT_COPIES, activation_bytes, plan
from affinity.probes.common import init_model
from affinity.probes.subsets import run_subsets
from affinity.taskset import InvalidTaskSet, parse_taskset
from tests.conftest import digits_frame

MEMBERS = [(t,) for t in range(3)] + list(itertools.combinations(range(3), 2)) + [(0, 1, 2)]


@pytest.fixture
def small(tmp_path, device):
    digits_frame(300).to_csv(tmp_path / "d.csv", index=False)
    ts = parse_taskset({
        "data": {"path": str(tmp_path / "d.csv"), "features": [f"pixel_{i}" for i in range(64)]},
        "tasks": [{"name": "zero", "column": "digit_0", "type": "binary"},
                  {"name": "label", "type": "multiclass"},
                  {"name": "ink", "type": "regression"}],
        "model": {"hidden": [16]}, "training": {"epochs": 4, "batch_size": 32, "patience": 2}})
    return ts, load_dataset(ts).to(device)


def test_activations_are_counted_on_the_real_network(small):
    ts, data = small
    model = init_model(ts, data, 0)
    # flatten 64, linear 16, relu 16, heads 1 + 10 + 1: float32 bytes per row
    assert activation_bytes(model, data.input_shape) == 4 * (64 + 16 + 16 + 12)


def test_plan_fits_the_budget_or_says_what_to_change(small):
    ts, data = small
    one = plan(ts, data, 7, None)
    assert one.chunk == 7 and one.member_bytes > 0
    weights = 4 * sum(p.numel() for p in init_model(ts, data, 0).parameters())
    assert one.member_bytes == WEIGHT_COPIES * weights + 3 * 32 * 4 * 108
    tight = plan(ts, data, 7, int(2.5 * one.member_bytes))
    assert tight.chunk == 2 and 1 <= tight.eval_rows
    assert tight.eval_rows * 2 * 4 * 108 <= 2.5 * one.member_bytes
    with pytest.raises(InvalidTaskSet, match="training.batch_size: one network needs about"):
        plan(ts, data, 7, one.member_bytes // 2)


def test_chunks_give_the_unsplit_result(small, device):
    ts, data = small
    whole = run_subsets(ts, data, MEMBERS, 0, device)
    executor = LocalExecutor(memory_budget=3 * plan(ts, data, 1, None).member_bytes)
    chunked = executor.subsets(ts, data, MEMBERS, 0, device)
    assert executor.last_chunks == [3, 3, 1]
    np.testing.assert_allclose(chunked.val_loss, whole.val_loss, rtol=1e-5, atol=1e-7)
    assert chunked.epochs.tolist() == whole.epochs.tolist()
    assert chunked.network_steps == whole.network_steps


def test_out_of_memory_halves_the_chunk(small, device, monkeypatch):
    """A device that cannot take more than two members at once: the chunk of seven is
    halved until each part fits, and the result is the unsplit one."""
    ts, data = small
    real = affinity.executor.run_subsets

    def small_device(taskset, data, members, *args, **kwargs):
        if len(members) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(taskset, data, members, *args, **kwargs)

    monkeypatch.setattr(affinity.executor, "run_subsets", small_device)
    executor = LocalExecutor(memory_budget=10**12)
    probe = executor.subsets(ts, data, MEMBERS, 0, device)
    assert executor.last_chunks == [1, 2, 2, 2]  # 7 -> 3 + 4 -> (1 + 2) + (2 + 2)
    np.testing.assert_allclose(probe.val_loss, real(ts, data, MEMBERS, 0, device).val_loss,
                               rtol=1e-5, atol=1e-7)
