"""taskaffinity: which tasks to train together, estimated from short probe runs."""

from affinity.analysis import analyze
from affinity.result import MeasureResult, Result
from affinity.taskset import InvalidTaskSet, TaskSet, load_taskset, parse_taskset

__all__ = ["InvalidTaskSet", "MeasureResult", "Result", "TaskSet", "analyze", "load_taskset",
           "parse_taskset"]
