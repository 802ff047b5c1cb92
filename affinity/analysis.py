"""``analyze``: a task set in, a Result with every requested affinity matrix out."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import torch

from affinity.data import Dataset, load_dataset
from affinity.executor import Executor, LocalExecutor
from affinity.measures import MEASURES, ProbeRun
from affinity.models import resolve_device
from affinity.probes.common import n_steps
from affinity.probes.joint import run_joint
from affinity.progress import Progress, ProgressCallback
from affinity.recommend import recommend
from affinity.result import MeasureResult, Result
from affinity.taskset import TaskSet
from affinity.verify import verify


def probe_members(needs: set[str], n_tasks: int) -> list[tuple[int, ...]]:
    """The task subsets the subset probe trains: singles, and pairs when a measure needs them."""
    members: list[tuple[int, ...]] = []
    if needs & {"singles", "pairs"}:
        members += [(t,) for t in range(n_tasks)]
    if "pairs" in needs:
        members += list(itertools.combinations(range(n_tasks), 2))
    return members


def analyze(taskset: TaskSet, *, base_dir: str | Path = ".", device: str | torch.device = "auto",
            data: Dataset | None = None, progress: ProgressCallback | None = None,
            executor: Executor | None = None) -> Result:
    """Run the probes of every seed and compute the task set's affinity measures.

    ``executor`` runs the subset probes (default: ``LocalExecutor``, in this process)."""
    executor = executor or LocalExecutor()
    started = time.perf_counter()
    dev = resolve_device(device)
    data = (data or load_dataset(taskset, base_dir)).to(dev)
    measures = [MEASURES[name] for name in taskset.measures]
    needs = set().union(*(m.needs for m in measures))
    members = probe_members(needs, data.n_tasks)
    probe = taskset.probe
    steps = n_steps(len(data.x_train), probe.batch_size, probe.epochs)
    runs_per_seed = ("joint" in needs) + bool(members) + taskset.verify
    prog = Progress(steps * runs_per_seed * probe.seeds, progress)
    per_seed: dict[str, list[np.ndarray]] = {m.name: [] for m in measures}
    conflicts: list[np.ndarray] = []
    for seed in range(probe.seeds):
        joint = subsets = None
        if "joint" in needs:
            prog.enter(f"joint probe (seed {seed + 1}/{probe.seeds})")
            joint = run_joint(taskset, data, seed, dev, tick=prog.tick)
            conflicts.append(joint.conflict_rate)
        if members:
            prog.enter(f"{len(members)} subset probes (seed {seed + 1}/{probe.seeds})")
            subsets = executor.subsets(taskset, data, members, seed, dev, tick=prog.tick)
        run = ProbeRun(taskset, data, seed, joint, subsets)
        prog.enter(f"measures (seed {seed + 1}/{probe.seeds})")
        for m in measures:
            per_seed[m.name].append(np.asarray(m.compute(run), dtype=float))
    result = Result(
        tasks=taskset.task_names,
        affinity={k: MeasureResult.from_seeds(v) for k, v in per_seed.items()},
        diagnostics={"conflict_rate": MeasureResult.from_seeds(conflicts)} if conflicts else {},
        meta={
            "name": taskset.name,
            "device": str(dev),
            "seeds": probe.seeds,
            "n_train": len(data.x_train),
            "n_val": len(data.x_val),
            "taskset": taskset.model_dump(mode="json"),
            "torch": torch.__version__,
        },
    )
    prog.enter("recommending groups")
    recommend(result, taskset)
    if taskset.verify:
        prog.enter("verifying recommended groups")
        verify(result, taskset, data, dev, executor, tick=prog.tick)
    result.meta["seconds"] = round(time.perf_counter() - started, 3)
    prog.enter("done")
    return result
