"""The result's typed parts: a ``groupings`` entry, the ``verification`` (each primary's
auxiliary choice) and the ``meta`` (cost, warnings, what was measured). Their JSON is the
result document's (``docs/taskset.md``); a field a build did not set is left out of it, and
a document written by another build keeps the fields this one does not know.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["groups", "all_in_one", "single_task"]
Baseline = Literal["all_in_one", "single_task", "alone"]


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")


class Claim(_Part):
    """A comparison on seeds that chose nothing: the ``improvement`` (relative drop of the
    total loss) against the ``baseline``, its 95% ``interval`` (None where no fresh seed
    measured both), ``significant`` where the interval lies above 0, ``worse_beyond_noise``
    where it lies below."""

    baseline: Baseline | None = None
    improvement: float | None = None
    interval: list[float] | None = None
    significant: bool = False
    worse_beyond_noise: bool = False


class TaskMeasured(_Part):
    """One task's mean validation loss where the entry serves it, alone, and in one network
    for all; its gain over alone and the 95% half-width of that gain (None with one seed)."""

    loss: float
    single_loss: float
    all_in_one_loss: float
    gain: float
    gain_halfwidth: float | None = None


class MeasuredSeeds(_Part):
    """The seeds each option's per-task losses are the mean over."""

    groups: list[int]
    single_task: list[int]
    all_in_one: list[int]


class Finalist(_Part):
    """A candidate the race measured: its groups, the predictors that proposed it and its
    mean total loss on the selection seeds (None where it did not run on all of them)."""

    groups: list[list[str]]
    sources: list[str]
    measured_total_loss: float | None = None


class GroupingEntry(Claim):
    """What to train for k groups (the decision: ``groups``, ``kind``,
    ``expected_improvement``) and how the best measured groups compare with the better
    baseline on fresh seeds (the claim, ``Claim``'s fields). ``evidence``: measured (trained
    networks) or predicted (affinities alone); ``unmeasured_pairs``: pairs of tasks that
    share one of the groups and were never trained together."""

    k: int
    groups: list[list[str]]
    kind: Kind = "groups"
    evidence: Literal["measured", "predicted"] = "measured"
    unmeasured_pairs: list[list[str]] = Field(default_factory=list)
    expected_improvement: float | None = None
    best_groups: list[list[str]] | None = None
    best_sources: list[str] = Field(default_factory=list)
    best_expected_improvement: float | None = None
    served_by: dict[str, int] = Field(default_factory=dict)
    """Each task's group (its index in ``groups``), where the groups overlap."""
    measured: dict[str, TaskMeasured] = Field(default_factory=dict)
    measured_total_loss: float | None = None
    measured_seeds: MeasuredSeeds | None = None
    selection_seeds: list[int] = Field(default_factory=list)
    confirmation_seeds: list[int] = Field(default_factory=list)
    selected_by: str = ""
    finalists: list[Finalist] = Field(default_factory=list)
    predicted_gain: dict[str, float] | None = None
    """Each task's predicted gain (an entry chosen by prediction alone)."""


class AuxiliaryChoice(Claim):
    """A primary's auxiliary tasks: the decision (``auxiliaries``; empty for alone) and the
    best measured set against the primary alone (the claim, one-sided at 5%)."""

    auxiliaries: list[str] = Field(default_factory=list)
    best_measured: list[str] = Field(default_factory=list)
    expected_improvement: float = 0.0
    loss: float | None = None
    single_loss: float | None = None
    confirmation_seeds: list[int] = Field(default_factory=list)
    verdict: str = ""


class Verification(_Part):
    """The seeds the race selected on and the fresh seeds that confirmed, and each
    primary's auxiliary choice."""

    seeds: list[int] = Field(default_factory=list)
    selection_seeds: list[int] = Field(default_factory=list)
    confirmation_seeds: list[int] = Field(default_factory=list)
    auxiliary: dict[str, AuxiliaryChoice] = Field(default_factory=dict)


class Cost(_Part):
    """The compute spent: ``training_runs`` (network-steps over the all-in-one network's
    steps, ``unit_steps``) and counted operations (``flops``), against the ``budget`` (in
    both), the wall time and each stage's planned and trained cost."""

    training_runs: float = 0.0
    budget: float = 0.0
    flops: float | None = None
    budget_flops: float | None = None
    step_flops: float | None = None
    unit_steps: int = 0
    network_steps: int = 0
    seconds: float = 0.0
    unit_seconds: float = 0.0
    wall_run_equivalents: float | None = None
    stages: list[dict[str, Any]] = Field(default_factory=list)


class NextLevel(_Part):
    """At the one-run level: what the measured level would cost, in training runs and, from
    the all-in-one network's time, in minutes on the machine that ran it."""

    training_runs: int
    minutes: float


class Meta(_Part):
    """How the result was made: the task set, the device, the rows, the cost, the warnings,
    the pairs never trained, the predictors the race drew candidates from."""

    name: str | None = None
    device: str = ""
    probe_seeds: int = 1
    n_train: int = 0
    n_val: int = 0
    taskset: dict[str, Any] = Field(default_factory=dict)
    torch: str = ""
    warnings: list[str] = Field(default_factory=list)
    untrained_pairs: list[list[str]] | None = None
    predictors: list[str] = Field(default_factory=list)
    surrogate_slopes: dict[str, float] | None = None
    driving_measure: str = ""
    cost: Cost = Field(default_factory=Cost)
    seconds: float = 0.0
    next_level: NextLevel | None = None


def dump(part: BaseModel) -> dict[str, Any]:
    """A part's JSON object: the fields its build set, and those it kept from a document."""
    return part.model_dump(mode="json", exclude_unset=True)
