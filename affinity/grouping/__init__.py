"""Turning affinity matrices into groups: selection under a budget, and graph clusterings."""

from affinity.grouping.clustering import CLUSTERING_METHODS, cluster_tasks, partition_quality
from affinity.grouping.gain import group_gains
from affinity.grouping.select import Selection, TaskGrouper, select_groups

__all__ = ["CLUSTERING_METHODS", "Selection", "TaskGrouper", "cluster_tasks", "group_gains",
           "partition_quality", "select_groups"]
