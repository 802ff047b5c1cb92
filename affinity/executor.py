"""Where the batched subset probes run: in this process (``LocalExecutor``, the default) or
spread over a Ray cluster (``RayExecutor``) in chunks sized to fit a device's memory.

Every member of a seed starts from the same weights and sees the same minibatches, so a
chunk trains exactly what it would inside the whole batch: merging the chunks' results gives
the unsplit result (to float tolerance).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import torch

from affinity.data import Dataset
from affinity.memory import available_bytes, plan
from affinity.probes.joint import JointProbe, run_joint
from affinity.probes.subsets import SubsetProbe, merge_probes, run_subsets
from affinity.taskset import InvalidTaskSet, TaskSet

Members = Sequence[tuple[int, ...]]


class Executor(Protocol):
    def joint(self, taskset: TaskSet, data: Dataset, seed: int, device: torch.device,
              tick: Callable[..., None] | None = None) -> JointProbe:
        """Train the all-in-one network of ``seed`` with its affinity samples (as
        ``probes.joint.run_joint``); call ``tick()`` as the training goes on."""

    def subsets(self, taskset: TaskSet, data: Dataset, members: Members, seed: int,
                device: torch.device, tick: Callable[..., None] | None = None,
                deadline: float | None = None) -> SubsetProbe:
        """Train one network per member subset (as ``probes.subsets.run_subsets``, its
        ``deadline`` included); call ``tick()`` as the training goes on."""


class _JointHere:
    """The all-in-one network trains in this process (one network: nothing to spread)."""

    def joint(self, taskset: TaskSet, data: Dataset, seed: int, device: torch.device,
              tick: Callable[..., None] | None = None) -> JointProbe:
        return run_joint(taskset, data, seed, device, tick=tick)


class LocalExecutor(_JointHere):
    """The members as batched models in this process: one stack when they fit the device's
    memory (RAM on the CPU), else chunks trained one after another (``memory.plan``). A chunk
    that runs out of CUDA memory anyway is halved and retried.

    memory_budget : bytes a run may use; default: what the device has free (a share of it).
    """

    def __init__(self, memory_budget: int | None = None) -> None:
        self.memory_budget = memory_budget
        self.last_chunks: list[int] = []  # chunk sizes of the latest call, for reports

    def subsets(self, taskset: TaskSet, data: Dataset, members: Members, seed: int,
                device: torch.device, tick: Callable[..., None] | None = None,
                deadline: float | None = None) -> SubsetProbe:
        budget = self.memory_budget or available_bytes(device)
        sizing = plan(taskset, data, len(members), budget)
        todo = chunk(members, sizing.chunk)
        parts, self.last_chunks = [], []
        while todo:
            part = todo.pop(0)
            try:
                parts.append(run_subsets(taskset, data, part, seed, device, tick=tick,
                                         eval_rows=sizing.eval_rows, deadline=deadline))
                self.last_chunks.append(len(part))
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                if len(part) == 1:
                    raise InvalidTaskSet(
                        "training.batch_size: one network does not fit the GPU's free memory; "
                        "lower training.batch_size or the backbone's size") from None
                half = len(part) // 2
                todo[:0] = [part[:half], part[half:]]
        return parts[0] if len(parts) == 1 else merge_probes(parts, device)


def chunk(members: Members, size: int) -> list[list[tuple[int, ...]]]:
    """Split ``members`` into consecutive chunks of at most ``size``."""
    size = max(1, size)
    return [list(members[i:i + size]) for i in range(0, len(members), size)]


def _train_chunk(taskset_doc: dict, data: Dataset, members: list[tuple[int, ...]],
                 seed: int, deadline: float | None = None) -> SubsetProbe:
    """A Ray task: train one chunk on the GPU Ray assigned it, else on the CPU."""
    import ray

    taskset = TaskSet.model_validate(taskset_doc)
    device = torch.device("cuda" if ray.get_gpu_ids() else "cpu")
    probe = run_subsets(taskset, data.to(device), members, seed, device, deadline=deadline)
    return merge_probes([probe])  # moved to the CPU for the trip back


class RayExecutor(_JointHere):
    """Chunks of members as Ray tasks, each asking for the share of a GPU its memory needs
    (when the cluster has GPUs) and retried by Ray when its worker dies.

    address : Ray address (``auto``, ``ray://host:10001``); None starts a local Ray.
    memory_budget : bytes a chunk may use; default: the smallest GPU's memory, or 2 GiB.
    """

    def __init__(self, address: str | None = None, *, memory_budget: int | None = None,
                 max_retries: int = 3, max_chunk_members: int | None = None) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                     ignore_reinit_error=True)
        self.ray = ray
        self.gpus = float(ray.cluster_resources().get("GPU", 0))
        # GPUs of the cluster may be elsewhere: without one here, assume 16 GiB each
        self.gpu_memory = (_gpu_memory() or 16 * 1024**3) if self.gpus else 0
        self.memory_budget = memory_budget or self.gpu_memory or 2 * 1024**3
        self.max_retries = max_retries
        self.max_chunk_members = max_chunk_members
        self.last_chunks: list[int] = []  # chunk sizes of the latest call, for reports

    def subsets(self, taskset: TaskSet, data: Dataset, members: Members, seed: int,
                device: torch.device, tick: Callable[[], None] | None = None,
                deadline: float | None = None) -> SubsetProbe:
        """As ``LocalExecutor.subsets``; ``deadline`` is wall-clock time (``time.time()``),
        the same on every machine of the cluster as far as their clocks agree."""
        per_member = plan(taskset, data, len(members), None).member_bytes
        size = max(1, self.memory_budget // per_member)
        if self.max_chunk_members:
            size = min(size, self.max_chunk_members)
        chunks = chunk(members, size)
        self.last_chunks = [len(c) for c in chunks]
        gpu_share = 0.0
        if self.gpus:
            gpu_share = min(1.0, math.ceil(100 * size * per_member / self.gpu_memory) / 100)
        task = self.ray.remote(num_gpus=gpu_share, max_retries=self.max_retries)(_train_chunk)
        data_ref = self.ray.put(data.to("cpu"))
        doc = taskset.model_dump(mode="json")
        parts = self.ray.get([task.remote(doc, data_ref, c, seed, deadline) for c in chunks])
        if tick:
            tick()
        return merge_probes(parts, device)


def _gpu_memory() -> int:
    """Total memory of the smallest visible GPU of this process, or 0."""
    if not torch.cuda.is_available():
        return 0
    return min(torch.cuda.get_device_properties(i).total_memory
               for i in range(torch.cuda.device_count()))
