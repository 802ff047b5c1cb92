"""/v1/datasets: upload (streamed, size-capped), list, inspect and delete data files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from fastapi import APIRouter, UploadFile

from affinity.taskset import InvalidTaskSet
from api.deps import OwnerDep, SettingsDep, StoreDep
from api.errors import TooLarge
from api.schemas import DatasetPublic, DatasetsPublic
from api.store import new_id

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
FORMATS = (".csv", ".parquet", ".pq", ".npz")
CHUNK = 1 << 20


def describe(path: Path, name: str) -> tuple[int, list[str]]:
    """Row count and columns (NPZ: array names) of a data file; InvalidTaskSet if unreadable."""
    try:
        if path.suffix == ".csv":
            frame = pd.read_csv(path)
            return len(frame), [str(c) for c in frame.columns]
        if path.suffix in (".parquet", ".pq"):
            meta = pq.ParquetFile(path).metadata
            return meta.num_rows, [meta.schema.column(i).name for i in range(meta.num_columns)]
        with np.load(path, allow_pickle=False) as npz:
            if "X" not in npz.files:
                raise ValueError("no array 'X'")
            for key in npz.files:  # loads each array: object arrays are refused here
                npz[key]
            return len(npz["X"]), list(npz.files)
    except Exception as exc:  # noqa: BLE001 - readers raise many types for a bad file
        raise InvalidTaskSet(f"file: cannot read {name!r}: {exc}") from None


@router.post("", status_code=201, response_model=DatasetPublic)
def upload(file: UploadFile, store: StoreDep, settings: SettingsDep,
           owner: OwnerDep) -> DatasetPublic:
    name = Path(file.filename or "").name
    suffix = Path(name).suffix.lower()
    if suffix not in FORMATS:
        raise InvalidTaskSet(f"file: unsupported format {suffix or name!r}; use .csv, "
                             ".parquet or .npz")
    dataset_id = new_id("ds")
    folder = Path(settings.data_dir).resolve() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dataset_id}{suffix}"
    size = 0
    try:
        with path.open("wb") as out:
            while chunk := file.file.read(CHUNK):
                size += len(chunk)
                if size > settings.max_upload_bytes:
                    raise TooLarge(f"file: larger than the {settings.max_upload_bytes} byte "
                                   "limit")
                out.write(chunk)
        n_rows, columns = describe(path, name)
        if n_rows == 0:
            raise InvalidTaskSet(f"file: {name!r} has no rows")
        row = store.add_dataset(owner, name, str(path), size, n_rows, columns, dataset_id)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return DatasetPublic.of(row)


@router.get("", response_model=DatasetsPublic)
def list_datasets(store: StoreDep, owner: OwnerDep) -> DatasetsPublic:
    rows = store.list_datasets(owner)
    return DatasetsPublic(data=[DatasetPublic.of(r) for r in rows], count=len(rows))


@router.get("/{dataset_id}", response_model=DatasetPublic)
def get_dataset(dataset_id: str, store: StoreDep, owner: OwnerDep) -> DatasetPublic:
    return DatasetPublic.of(store.get_dataset(owner, dataset_id))


@router.delete("/{dataset_id}", response_model=DatasetPublic)
def delete_dataset(dataset_id: str, store: StoreDep, owner: OwnerDep) -> DatasetPublic:
    """Refused (409) while a queued or running job uses the dataset."""
    row = store.delete_dataset(owner, dataset_id)
    Path(row.path).unlink(missing_ok=True)
    return DatasetPublic.of(row)
