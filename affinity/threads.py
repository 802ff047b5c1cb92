"""CPU threads: all cores but one by default, for torch and the BLAS pools alike, so an
analysis on a shared machine does not fight the other processes for every core."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    return max(1, available_cores() - 1)


@contextmanager
def limited_threads(threads: int | None = None) -> Iterator[int]:
    """Run the body with ``threads`` CPU threads (default ``default_threads()``)."""
    threads = threads or default_threads()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(threads):
            yield threads
    finally:
        torch.set_num_threads(before)
