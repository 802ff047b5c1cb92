"""The task-set document: pydantic models, loading, and field-naming errors."""

from __future__ import annotations

import difflib
import json
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from affinity.errors import InvalidInput

MEASURE_NAMES = ("grad_cosine", "lookahead", "cka", "transfer", "pairwise")
DEFAULT_DRIVERS = ("pairwise", "lookahead", "transfer", "grad_cosine", "cka")
BUDGET_PER_TASK = 2.5
"""The provisional default before the all-in-one network has trained: this many training runs
per task, within [MIN_BUDGET, MAX_BUDGET]. Once it has, the default is counted compute
(``plan.counted_default``), raised to the least budget that affords the probes' seed and a
fresh seed of the baselines and the finalists where that is more."""
MIN_BUDGET = 20.0
MAX_BUDGET = 24.0
"""The default's cap from 10 tasks on: a default analysis stays within 25 trainings of one
network in wall time (the last stage's estimate and the work after the race may overrun
the budget by a few percent)."""
TaskType = Literal["binary", "multiclass", "regression"]
Name = Annotated[str, Field(min_length=1, max_length=200)]
PositiveInt = Annotated[int, Field(gt=0)]


class InvalidTaskSet(InvalidInput):
    """A task set (or the data it points to) is invalid; the message names the field."""

    what = "task set"


class _Strict(BaseModel):
    # attribute docstrings become the fields' descriptions (JSON Schema, /docs, docs/)
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def _one_of(sources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """JSON Schema: exactly one of ``sources`` given, each with its value's schema."""
    return {"oneOf": [{"required": [k], "properties": {k: v}} for k, v in sources.items()]}


class StandardizeSpec(_Strict):
    """Preprocessing is part of the recipe: what the final networks will see."""

    features: bool = True
    """Zero mean, unit variance with the training rows' statistics: per column of a table,
    per channel of an image array (never per pixel); off: the features as given."""
    targets: bool = True
    """Regression targets likewise; the total loss the verdict compares is in these units
    (off: in the targets' own units, as a user who trains on raw targets minimises it)."""


class DataSpec(_Strict):
    model_config = ConfigDict(**_Strict.model_config, json_schema_extra=_one_of({
        "path": {"type": "string"}, "dataset": {"type": "string"},
        "builtin": {"const": "digits"}, "in_memory": {"const": True}}))

    path: str | None = None
    dataset: str | None = None
    builtin: Literal["digits"] | None = None
    in_memory: bool = False
    """The data comes from Python, with the task set (``analyze(taskset,
    data=affinity.tensors(taskset, train, val))``); ``affinity run`` and the service refuse
    it."""
    features: list[Name] | None = Field(default=None, min_length=1)
    split_column: Name | None = None
    standardize: StandardizeSpec = StandardizeSpec()

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        given = [k for k in ("path", "dataset", "builtin") if getattr(self, k) is not None]
        given += ["in_memory"] if self.in_memory else []
        if len(given) != 1:
            raise ValueError(f"exactly one of path, dataset, builtin, in_memory is required; "
                             f"got {given or 'none'}")
        return self


class TaskSpec(_Strict):
    name: Name
    column: Name | None = None
    type: TaskType

    @property
    def source(self) -> str:
        """The data column (or NPZ array) holding this task's labels."""
        return self.column or self.name


class ModelSpec(_Strict):
    backbone: Name = "mlp"
    """A registered backbone (``GET /v1/backbones`` lists them): the built-ins
    ``mlp`` (vectors) and ``cnn`` (images (C, H, W)), or one a package installed."""
    hidden: list[Annotated[int, Field(gt=0, le=4096)]] | None = Field(
        default=None, min_length=1, max_length=8
    )
    """Widths of mlp's layers (default [128, 64]) or cnn's conv channels (default [32, 64]);
    passed to any backbone that takes ``hidden``."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Keyword options of the backbone, checked against what it takes."""

    @field_validator("backbone")
    @classmethod
    def _registered(cls, name: str) -> str:
        from affinity.backbones import registry  # imports torch: only when a set is checked

        if name not in registry():
            raise ValueError(f"not a registered backbone; installed: "
                             f"{', '.join(sorted(registry()))}")
        return name

    @field_validator("options")
    @classmethod
    def _taken(cls, options: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from affinity.backbones import get

        if "hidden" in options:
            raise ValueError("give hidden as model.hidden, not in model.options")
        if "backbone" in info.data:  # else the backbone's own error says why
            hidden = info.data.get("hidden")
            get(info.data["backbone"]).check(
                {**options, **({"hidden": hidden} if hidden is not None else {})})
        return options

    def factory_options(self) -> dict[str, Any]:
        """The backbone's keyword options: ``options`` plus ``hidden`` when given."""
        if self.hidden is None:
            return dict(self.options)
        return {**self.options, "hidden": list(self.hidden)}


class TrainingSpec(_Strict):
    """How the user will train the final networks; every probe network trains this way."""

    epochs: Annotated[int, Field(gt=0, le=10000)] = 200
    """Most epochs; each network stops earlier when its validation loss stops improving."""
    batch_size: Annotated[int, Field(gt=0, le=65536)] = 128
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: Annotated[float, Field(gt=0, le=10)] = 1e-3
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    """SGD only."""
    weight_decay: Annotated[float, Field(ge=0, le=10)] = 0.0
    patience: Annotated[int, Field(gt=0, le=1000)] = 5
    """Epochs without improving the mean validation loss before a network stops."""
    min_delta: Annotated[float, Field(ge=0, lt=1)] = 1e-4
    """An epoch improves when the mean validation loss falls by more than this fraction of the
    network's loss after its first epoch (0: any drop; 1e-3 stops a network whose loss only
    creeps towards 0, e.g. a task it already classifies perfectly)."""


class BudgetSpec(_Strict):
    training_runs: Annotated[float, Field(gt=0, le=100000)] | None = None
    """Compute the analysis may spend, in units of one full training of the all-in-one
    network on this data, counted in work (network-steps), never in seconds. Default: a fixed
    amount of counted compute (6e12 floating-point operations, each step's counted once on
    the all-in-one network, plus 4e7 a step), in runs once the all-in-one network has
    trained; never below the least that affords the probes' seed and a fresh seed of the
    baselines and the finalists (from each network's rows)."""
    max_seconds: Annotated[float, Field(gt=0)] | None = None
    """Optional wall-clock cap; networks still training when it passes are scored at their
    best epoch so far and the result says that it bit. The plan never depends on it."""
    when_short: Literal["refuse", "baselines"] = "refuse"
    """When the budget cannot afford two seeds of the baselines and the finalists: refuse
    the task set before training, saying how many training runs it needs (a budget that
    affords the checked level, the groups predicted from one run and checked on one fresh
    seed, gets that instead), or train and compare the two baselines only (one network for
    all tasks, one per task)."""


MOVED_PROBE_KEYS = ("epochs", "batch_size", "lr")


class ProbeSpec(_Strict):
    seeds: Annotated[int, Field(gt=0, le=20)] | None = None
    """Seeds of the affinity probes; default: chosen by the planner from the budget."""
    affinity_every: PositiveInt = 20
    """Joint-probe steps between two gradient/lookahead samples (TAG samples every 10th of a
    short run; the joint probe now trains to convergence, so every 20th gives as many)."""
    lookahead: Literal["exact", "first_order"] = "exact"
    lookahead_lr: Annotated[float, Field(gt=0, le=10)] = 0.1
    """Step size eta of the lookahead update theta - eta * g_i (plain SGD on the trunk)."""
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    """Share of rows held out for validation when the data has no split column."""
    transfer_steps: Annotated[int, Field(gt=0, le=10000)] = 200

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, doc: Any) -> Any:
        for key in MOVED_PROBE_KEYS:
            if isinstance(doc, dict) and key in doc:
                raise ValueError(f"probe.{key} moved to training.{key}: probes train the way "
                                 "the final networks will")
        return doc


class GroupingSpec(_Strict):
    budgets: list[PositiveInt] | None = Field(default=None, min_length=1)
    """Numbers of groups k to recommend; default 1, 2, 3 (capped at the number of tasks)."""
    measure: Literal[MEASURE_NAMES] | None = None  # type: ignore[valid-type]
    """The matrix that drives the choice; default: the first computed of DEFAULT_DRIVERS."""
    rule: Literal["sum", "mean"] = "sum"
    """How a group's gain for a task follows from the affinities (see grouping/gain.py)."""
    verify: bool = True
    """Race the candidate groupings (train them over seeds) and recommend the measured best;
    off: recommend by predicted gain alone, with no measured comparison."""
    candidates: Annotated[int, Field(gt=0, le=50)] = 3
    """Candidate groupings per k from each predictor (every measure and rule) in the race."""


class AuxiliarySpec(_Strict):
    primary: list[Name] | None = None
    max_aux: PositiveInt = 3


class TaskSet(_Strict):
    name: str | None = None
    data: DataSpec
    tasks: list[TaskSpec] = Field(min_length=2)
    model: ModelSpec = Field(default_factory=ModelSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    probe: ProbeSpec = Field(default_factory=ProbeSpec)
    measures: list[Literal[MEASURE_NAMES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(MEASURE_NAMES), min_length=1
    )
    grouping: GroupingSpec = Field(default_factory=GroupingSpec)
    auxiliary: AuxiliarySpec = Field(default_factory=AuxiliarySpec)
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    """The base of every seed the analysis draws: the probes' (seed, seed + 1, ...), the
    race's and the fresh seeds' (seed + 500, ...), and the sampled larger groups'. Another
    seed shows whether an answer hangs on one draw (scikit-learn's ``random_state``)."""
    _folder: Path | None = PrivateAttr(default=None)

    @property
    def folder(self) -> Path | None:
        """The folder of the file it was read from (``load_taskset``): where a relative
        ``data.path`` lies."""
        return self._folder

    @model_validator(mode="after")
    def _cross_field(self) -> TaskSet:
        names = [t.name for t in self.tasks]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ValueError(f"tasks[{i}].name: duplicate task name {name!r}")
        for i, m in enumerate(self.measures):
            if m in self.measures[:i]:
                raise ValueError(f"measures[{i}]: duplicate measure {m!r}")
        for i, k in enumerate(self.grouping.budgets or []):
            if k > len(names):
                raise ValueError(
                    f"grouping.budgets[{i}]: k={k} exceeds the number of tasks ({len(names)})"
                )
        if self.grouping.measure and self.grouping.measure not in self.measures:
            raise ValueError(f"grouping.measure: {self.grouping.measure!r} is not in measures")
        for i, p in enumerate(self.auxiliary.primary or []):
            if p not in names:
                raise ValueError(f"auxiliary.primary[{i}]: unknown task {p!r}")
        if self.data.split_column and self.data.split_column in {t.source for t in self.tasks}:
            raise ValueError("data.split_column: the split column is also a task column")
        return self

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    @property
    def driver(self) -> str:
        """The measure whose matrix drives grouping and auxiliary selection."""
        return self.grouping.measure or next(m for m in DEFAULT_DRIVERS if m in self.measures)

    @property
    def verify(self) -> bool:
        return self.grouping.verify

    @property
    def training_runs(self) -> float:
        """The compute budget in training runs, with the default filled in."""
        return self.budget.training_runs or min(MAX_BUDGET, max(MIN_BUDGET,
                                                               BUDGET_PER_TASK * len(self.tasks)))

    @property
    def budgets(self) -> list[int]:
        """The budgets k to recommend groupings for, with the default filled in."""
        return self.grouping.budgets or list(range(1, min(3, len(self.tasks)) + 1))


def _format_error(err: Mapping[str, Any]) -> str:
    loc = ""
    for part in err["loc"]:
        loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
    msg = err["msg"].removeprefix("Value error, ")
    if not loc:
        return msg
    if err["type"] == "extra_forbidden":
        return f"{loc}: unknown key" + did_you_mean(str(err["loc"][-1]),
                                                    _known_keys(err["loc"][:-1]))
    got = err.get("input")
    shown = "" if isinstance(got, dict | list) or err["type"] == "missing" else f"; got {got!r}"
    return f"{loc}: {msg}{shown}"


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices`` to a misspelt ``word``, else
    an empty string (difflib's similarity, as Python's own NameError suggestions)."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.7)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _known_keys(loc: Sequence[Any]) -> list[str]:
    """The keys a task set allows at ``loc`` (a path of keys and list indices)."""
    model: Any = TaskSet
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        kinds = [a for a in (field.annotation, *typing.get_args(field.annotation))
                 for a in (a, *typing.get_args(a))]
        model = next((k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)),
                     None)
        if model is None:
            return []
    return list(model.model_fields)


def taskset_schema(ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
    """The JSON Schema of a task set (``docs/taskset.schema.json``, ``GET
    /v1/schema/taskset``); ``ref_template`` places its definitions elsewhere (OpenAPI)."""
    return TaskSet.model_json_schema(ref_template=ref_template)


def parse_taskset(doc: Any) -> TaskSet:
    """Validate a task-set document (a mapping); raise InvalidTaskSet naming every bad field."""
    if not isinstance(doc, dict):
        raise InvalidTaskSet(f"task set must be a mapping; got {type(doc).__name__}")
    try:
        return TaskSet.model_validate(doc)
    except ValidationError as exc:
        raise InvalidTaskSet("; ".join(_format_error(e) for e in exc.errors())) from None


def load_taskset(path: str | Path) -> TaskSet:
    """Read a task set from a YAML or JSON file. A relative ``data.path`` is resolved against
    the file's folder (as ``affinity run`` does), whatever the working folder."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidTaskSet(f"task set file {str(path)!r}: {exc.strerror}") from None
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidTaskSet(f"task set file {str(path)!r} is not valid YAML/JSON: {exc}") from None
    taskset = parse_taskset(doc)
    taskset._folder = path.resolve().parent
    return taskset
