"""Counted compute: the floating-point operations of one training step of a network, counted
by ``torch.utils.flop_counter.FlopCounterMode`` (never timed), so that the default budget is
the same on any machine and under any load, and works for a user's own trunk too.

A step's cost is its counted operations (forward and backward of one minibatch through the
trunk and the heads) plus ``STEP_OVERHEAD_FLOPS``, a fixed term for what every step costs
beyond its arithmetic (the optimiser's update, the framework's calls): without it a tiny
network would be granted thousands of runs.
"""

from __future__ import annotations

from torch.utils.flop_counter import FlopCounterMode

from affinity.data import Dataset
from affinity.probes.common import init_model
from affinity.task_types import TaskLosses
from affinity.taskset import TaskSet

STEP_OVERHEAD_FLOPS = 4e7
"""What a step costs beyond its counted operations, in operations. On one core of the 2-core
CPU, the all-in-one MLP step of the benchmark's tables takes 0.6-1.0 ms with 0.3-2 MFLOP of
counted arithmetic, and one of 58 MFLOP 1.6 ms: about 60 GFLOP/s, and 0.6 ms (40 MFLOP at that
rate) that every step costs whatever its size."""

def step_flops(taskset: TaskSet, data: Dataset) -> float:
    """The counted operations of one training step of the all-in-one network on a full
    minibatch (forward, loss and backward), plus ``STEP_OVERHEAD_FLOPS``."""
    model = init_model(taskset, data, 0).to(data.x_train.device)
    rows = min(taskset.training.batch_size, len(data.x_train))
    x, y = data.x_train[:rows], data.y_train[:rows]
    losses = TaskLosses(data.tasks)
    counter = FlopCounterMode(display=False)
    with counter:
        losses(model(x), y).sum().backward()
    return float(counter.get_total_flops()) + STEP_OVERHEAD_FLOPS
