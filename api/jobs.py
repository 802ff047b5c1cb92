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
    check_taskset_limits(settings, taskset)
    root = Path(settings.data_dir).resolve()
    data = load_dataset(taskset, base_dir=root, root=root, datasets=datasets)
    rows = len(data.x_train) + len(data.x_val)
    if rows > settings.max_rows:
        raise InvalidTaskSet(f"data: {rows} rows exceed the limit of {settings.max_rows}")
    width = int(data.x_train[0].numel())
    if width > settings.max_features:
        raise InvalidTaskSet(f"data.features: {width} feature values per row exceed the limit "
                             f"of {settings.max_features}")
    return taskset, data


def check_taskset_limits(settings: Settings, taskset: TaskSet) -> None:
    """The service's limits on one task set, each named by its field."""
    if len(taskset.tasks) > settings.max_tasks:
        raise InvalidTaskSet(f"tasks: at most {settings.max_tasks} tasks per task set; got "
                             f"{len(taskset.tasks)}")
    if taskset.training.epochs > settings.max_epochs:
        raise InvalidTaskSet(f"training.epochs: {taskset.training.epochs} exceeds the limit of "
                             f"{settings.max_epochs}")
    if taskset.training_runs > settings.max_training_runs:
        raise InvalidTaskSet(f"budget.training_runs: {taskset.training_runs:g} exceeds the "
                             f"limit of {settings.max_training_runs:g}")


def load_job_data(store: Store, settings: Settings, job: JobRow) -> tuple[TaskSet, Dataset]:
    return resolve(store, settings, job.owner, job.taskset)
