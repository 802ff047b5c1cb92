"""The result document (``result.json``) and how it is written to a folder."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from affinity.result_models import GroupingEntry, Meta, Verification, dump


@dataclass(frozen=True)
class MeasureResult:
    """A (T, T) affinity matrix (row = source i, column = target j): mean and std over seeds;
    ``std`` is None where one seed was measured (unknown, never 0)."""

    matrix: np.ndarray
    std: np.ndarray | None

    @classmethod
    def from_seeds(cls, per_seed: list[np.ndarray]) -> MeasureResult:
        stack = np.stack(per_seed)
        return cls(stack.mean(axis=0), stack.std(axis=0, ddof=1) if len(per_seed) > 1 else None)

    def to_dict(self) -> dict[str, list[list[float]] | None]:
        return {"matrix": _rounded(self.matrix),
                "std": None if self.std is None else _rounded(self.std)}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> MeasureResult:
        std = doc.get("std")
        return cls(np.asarray(doc["matrix"], dtype=float),
                   None if std is None else np.asarray(std, dtype=float))

    @property
    def spread(self) -> np.ndarray:
        """``std``, with NaN for unknown where one seed was measured."""
        return np.full_like(self.matrix, np.nan) if self.std is None else self.std


@dataclass
class Result:
    """Everything an analysis produced; ``to_dict`` gives the contract's JSON document."""

    tasks: list[str]
    affinity: dict[str, MeasureResult]
    diagnostics: dict[str, MeasureResult] = field(default_factory=dict)
    groupings: list[GroupingEntry] = field(default_factory=list)
    clusterings: list[dict[str, Any]] = field(default_factory=list)
    auxiliary: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    verification: Verification | None = None
    """None where nothing was verified (written as {})."""
    verdict: str = ""
    meta: Meta = field(default_factory=Meta)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "verdict": self.verdict,
            "affinity": {k: v.to_dict() for k, v in self.affinity.items()},
            "diagnostics": {k: v.to_dict() for k, v in self.diagnostics.items()},
            "groupings": [dump(g) for g in self.groupings],
            "clusterings": self.clusterings,
            "auxiliary": self.auxiliary,
            "verification": dump(self.verification) if self.verification else {},
            "meta": dump(self.meta),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Result:
        """The inverse of ``to_dict`` (matrices as written: 6 significant digits)."""
        try:
            return cls(
                tasks=list(doc["tasks"]),
                affinity={k: MeasureResult.from_dict(v) for k, v in doc["affinity"].items()},
                diagnostics={k: MeasureResult.from_dict(v)
                             for k, v in doc.get("diagnostics", {}).items()},
                groupings=[GroupingEntry.model_validate(g) for g in doc.get("groupings", [])],
                clusterings=doc.get("clusterings", []), auxiliary=doc.get("auxiliary", {}),
                verification=Verification.model_validate(doc["verification"])
                if doc.get("verification") else None,
                verdict=doc.get("verdict", ""), meta=Meta.model_validate(doc.get("meta", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a result document: {exc!r}") from None

    @classmethod
    def read(cls, path: str | Path) -> Result:
        """A result from ``result.json`` or the folder that holds it."""
        path = Path(path)
        return cls.from_dict(json.loads((path / "result.json" if path.is_dir() else path)
                                        .read_text()))

    def frame(self, measure: str, what: str = "matrix") -> pd.DataFrame:
        """One matrix (``what``: matrix or std) of a measure or diagnostic as a DataFrame:
        index = source task, columns = target task (std: NaN where one seed was measured)."""
        found = {**self.affinity, **self.diagnostics}
        if measure not in found:
            raise KeyError(f"no measure {measure!r}; this result has {sorted(found)}")
        if what not in ("matrix", "std"):
            raise ValueError(f"what must be 'matrix' or 'std'; got {what!r}")
        m = found[measure]
        return matrix_frame(m.matrix if what == "matrix" else m.spread, self.tasks)

    def write(self, out_dir: str | Path) -> Path:
        """Write result.json and one CSV per matrix (and its std, empty cells where one seed
        was measured); return the JSON's path."""
        out = Path(out_dir)
        (out / "matrices").mkdir(parents=True, exist_ok=True)
        for name, m in {**self.affinity, **self.diagnostics}.items():
            _write_csv(out / "matrices" / f"{name}.csv", self.tasks, m.matrix)
            _write_csv(out / "matrices" / f"{name}_std.csv", self.tasks, m.spread)
        path = out / "result.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2))
        tmp.replace(path)
        return path


def matrix_frame(matrix: np.ndarray, tasks: list[str]) -> pd.DataFrame:
    """A (T, T) matrix as a DataFrame: index = source task, columns = target task."""
    frame = pd.DataFrame(matrix, index=tasks, columns=tasks)
    frame.index.name, frame.columns.name = "source", "target"
    return frame


def _rounded(a: np.ndarray) -> list[list[float]]:
    return [[float(f"{v:.6g}") for v in row] for row in np.asarray(a, dtype=float)]


def _write_csv(path: Path, tasks: list[str], matrix: np.ndarray) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["source", *tasks])
        for t, row in zip(tasks, matrix, strict=True):
            writer.writerow([t, *("" if np.isnan(v) else f"{v:.6g}" for v in row)])
