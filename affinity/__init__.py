"""taskaffinity: which tasks to train together, from probe runs trained the way you train."""

from affinity.analysis import analyze
from affinity.evidence import group
from affinity.result import MeasureResult, Result
from affinity.taskset import InvalidTaskSet, TaskSet, load_taskset, parse_taskset
from affinity.tracker import AffinityTracker

__all__ = ["AffinityTracker", "InvalidTaskSet", "MeasureResult", "Result", "TaskSet", "analyze",
           "group", "load_taskset", "parse_taskset"]
