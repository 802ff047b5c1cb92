"""taskaffinity: which tasks to train together, from probe runs trained the way you train.

The public names load on first use (PEP 562), so that ``import affinity.client`` or the
``affinity`` command's help need not import torch."""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("taskaffinity")  # the one place: pyproject.toml
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "unknown"

_WHERE = {"analyze": "affinity.analysis", "group": "affinity.evidence",
          "InvalidEvidence": "affinity.evidence",
          "MeasureResult": "affinity.result", "Result": "affinity.result",
          "InvalidTaskSet": "affinity.taskset", "TaskSet": "affinity.taskset",
          "load_taskset": "affinity.taskset", "parse_taskset": "affinity.taskset",
          "AffinityTracker": "affinity.tracker", "tensors": "affinity.in_memory"}

__all__ = ["AffinityTracker", "InvalidEvidence", "InvalidTaskSet", "MeasureResult", "Result",
           "TaskSet", "analyze", "group", "load_taskset", "parse_taskset", "tensors"]

if TYPE_CHECKING:
    from affinity.analysis import analyze
    from affinity.evidence import InvalidEvidence, group
    from affinity.in_memory import tensors
    from affinity.result import MeasureResult, Result
    from affinity.taskset import InvalidTaskSet, TaskSet, load_taskset, parse_taskset
    from affinity.tracker import AffinityTracker


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'affinity' has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
