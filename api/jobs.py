"""From a submitted task-set document to a validated task set with its data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from affinity.data import Dataset, load_dataset
from affinity.taskset import InvalidTaskSet, TaskSet, parse_taskset
from api.settings import Settings
from api.store import JobRow, NotFound, Store


def resolve(store: Store, settings: Settings, owner: str | None,
            doc: dict[str, Any]) -> tuple[TaskSet, Dataset]:
    """Validate ``doc`` and load its data: paths confined to the data root, dataset ids
    limited to the owner's uploads. Raises InvalidTaskSet naming the field."""
    taskset = parse_taskset(doc)
    datasets = {}
    if taskset.data.dataset is not None:
        try:
            row = store.get_dataset(owner, taskset.data.dataset)
        except NotFound:
            raise InvalidTaskSet(f"data.dataset: unknown dataset {taskset.data.dataset!r}") \
                from None
        datasets[row.id] = Path(row.path)
    root = Path(settings.data_dir).resolve()
    return taskset, load_dataset(taskset, base_dir=root, root=root, datasets=datasets)


def load_job_data(store: Store, settings: Settings, job: JobRow) -> tuple[TaskSet, Dataset]:
    return resolve(store, settings, job.owner, job.taskset)
