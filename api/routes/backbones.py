"""/v1/backbones: the trunks installed on this server that a task set may name; and
/v1/schema/taskset: the JSON Schema of a task set."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from affinity.backbones import registry
from affinity.taskset import taskset_schema
from api.deps import OwnerDep
from api.schemas import BackbonePublic, BackbonesPublic

router = APIRouter(prefix="/v1", tags=["backbones"])


@router.get("/backbones", response_model=BackbonesPublic)
def list_backbones(_owner: OwnerDep) -> BackbonesPublic:
    """Every registered backbone (entry-point group ``taskaffinity.backbones``), with its
    keyword options (``model.options``) and their defaults."""
    return BackbonesPublic(backbones=[
        BackbonePublic(name=b.name, options=b.options, doc=b.doc)
        for b in sorted(registry().values(), key=lambda b: b.name)])


@router.get("/schema/taskset", tags=["schema"])
def get_taskset_schema(_owner: OwnerDep) -> dict[str, Any]:
    """The JSON Schema of the task set that ``POST /v1/jobs`` takes (also in
    docs/taskset.schema.json)."""
    return taskset_schema()
