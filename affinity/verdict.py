"""The result's plain sentences: the verdict (what to train and how sure that is) and each
primary's auxiliary sentence."""

from __future__ import annotations

from affinity.result_models import GroupingEntry
from affinity.stats import Comparison

_OTHER = {"single_task": "training every task alone", "all_in_one": "one network for all tasks"}
_TRAIN = {"single_task": "train every task alone", "all_in_one": "train all tasks in one network"}


def pct(x: float) -> str:
    """A relative change as a percentage: one decimal below 10%."""
    return f"{100 * x:.1f}%" if abs(x) < 0.1 else f"{100 * x:.0f}%"


def lower(x: float) -> str:
    """A relative drop in words: "0.3% lower", or "0.3% higher" where it is a rise."""
    return f"{pct(abs(x))} {'lower' if x >= 0 else 'higher'}"


def group_lines(entry: GroupingEntry) -> list[str]:
    """An entry's groups, one line each; where groups overlap, each says which of its tasks
    it serves (a task takes its predictions from one of its groups: ``served_by``)."""
    groups, served = entry.groups, entry.served_by
    if len({t for g in groups for t in g}) == sum(len(g) for g in groups) or not served:
        return [", ".join(g) for g in groups]
    return [f"{', '.join(g)} (serves {', '.join(t for t in g if served.get(t) == i) or 'none'})"
            for i, g in enumerate(groups)]


LISTED_TASKS = 24
"""A sentence lists the groups' tasks up to this many; beyond, their sizes."""


def groups_text(entry: GroupingEntry) -> str:
    """An entry's groups for a sentence: their lines, or, with more than ``LISTED_TASKS``
    members in all, how many tasks each holds (the groups are in the entry)."""
    if sum(len(g) for g in entry.groups) <= LISTED_TASKS:
        return "; ".join(group_lines(entry))
    return f"of {', '.join(str(len(g)) for g in entry.groups)} tasks: see groupings"


def is_the_baseline(entry: GroupingEntry) -> bool:
    """Whether an entry's best k groups are its better baseline itself (k = 1 against one
    network for all, k = T against every task alone): nothing to compare."""
    return entry.best_groups is not None and entry.improvement is None \
        and entry.best_groups == entry.groups and entry.kind == entry.baseline


def verdict(entries: list[GroupingEntry]) -> str:
    """One plain sentence: what to train and how sure that is. The k whose decision leads
    most over the better baseline: beyond noise, within noise ("either is about as good"),
    or not confirmed; where every k's decision is the better baseline, that baseline, with
    the best measured groups' comparison (worse beyond noise where they are)."""
    measured = [e for e in entries if e.baseline]
    if not measured:
        return "not measured: groups chosen by predicted gain only (verification is off)"
    grouped = [e for e in measured if e.kind == "groups"]
    if grouped:
        e = max(grouped, key=lambda e: e.expected_improvement or 0.0)
        lines = groups_text(e)
        other = _OTHER[e.baseline or ""]
        if e.significant and e.interval and e.improvement is not None:
            lo, hi = e.interval
            return (f"k = {e.k} groups cut the total loss by {pct(e.improvement)} "
                    f"({pct(lo)} to {pct(hi)}) against {other}: {lines}")
        if e.interval is not None and e.improvement is not None:
            lo, hi = e.interval
            return (f"train k = {e.k} groups ({lines}): they measured "
                    f"{lower(e.improvement)} in total loss than {other}, within noise "
                    f"({pct(lo)} to {pct(hi)}); either is about as good")
        return (f"train k = {e.k} groups ({lines}): they measured "
                f"{lower(e.expected_improvement or 0.0)} in total loss than {other} "
                "(not confirmed on a fresh seed: no interval)")
    base = measured[0].baseline or ""
    compared = [e for e in measured if not is_the_baseline(e) and e.interval
                and e.improvement is not None]
    if not compared:
        return f"{_TRAIN[base]}: it measured best of what was measured"
    worse = [e for e in compared if e.worse_beyond_noise]
    if len(worse) == len(compared):
        e = max(worse, key=lambda e: e.improvement or 0.0)
        lo, hi = e.interval or [0.0, 0.0]
        return (f"{_TRAIN[base]}: the best measured groups are worse beyond noise (k = "
                f"{e.k}: {pct(e.improvement or 0.0)}, {pct(lo)} to {pct(hi)})")
    e = max(compared, key=lambda e: e.improvement or 0.0)
    lo, hi = e.interval or [0.0, 0.0]
    return (f"{_TRAIN[base]}: it measured best; the best measured, k = {e.k} groups, "
            f"differ by {pct(e.improvement or 0.0)} in total loss, within noise ({pct(lo)} to "
            f"{pct(hi)}); either is about as good")


def auxiliary_sentence(primary: str, chosen: list[str], partners: list[str],
                       comp: Comparison | None, measured_gain: float | None) -> str:
    """What to train ``primary`` with: the ``chosen`` auxiliaries (empty: alone), beside its
    best measured ``partners`` and their comparison with alone on fresh seeds (``comp``) or,
    unconfirmed, their ``measured_gain`` on the seeds that chose them."""
    if chosen:
        head = f"train {primary} with {', '.join(chosen)}"
        if comp is None or comp.interval is None:
            return (f"{head}: its loss measured {lower(measured_gain or 0.0)} than alone "
                    "on the seeds that chose them (not confirmed on a fresh seed)")
        lo, hi = comp.interval
        if comp.significant:
            return f"{head}: its loss drops by {pct(comp.improvement)} ({pct(lo)} to {pct(hi)})"
        return (f"{head}: its loss measured {lower(comp.improvement)} than alone, within "
                f"noise ({pct(lo)} to {pct(hi)}); training it alone is about as good")
    if not partners:
        return f"train {primary} alone: no auxiliary set was measured"
    if comp is not None and comp.interval is not None:
        lo, hi = comp.interval
        worse = "worse beyond noise" if hi < 0 else "not better beyond noise"
        return (f"train {primary} alone: its best measured auxiliaries ({', '.join(partners)}) "
                f"are {worse} ({pct(comp.improvement)}: {pct(lo)} to {pct(hi)})")
    return (f"train {primary} alone: it measured better than with its best measured "
            f"auxiliaries ({', '.join(partners)})")
