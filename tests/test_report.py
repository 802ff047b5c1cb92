"""What the report and the printed tables say: never a contradiction, never a spread that
one seed cannot give."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from affinity.auxiliary import rank_auxiliaries
from affinity.report import _aux_cell, heatmap, write_report
from affinity.result import MeasureResult, Result
from affinity.result_models import GroupingEntry, Meta, Verification
from affinity.verdict import group_lines, groups_text, is_the_baseline, verdict

TASKS = ["a", "b", "c"]


def test_one_seed_has_no_spread_anywhere(tmp_path):
    """From one seed std is null in result.json, empty in the std CSV, None in the
    auxiliary ranking, and the report shows no ± for it."""
    one = MeasureResult.from_seeds([np.array([[0, 0.2, -0.1], [0.3, 0, 0.1], [0, 0.1, 0]])])
    assert one.std is None and one.to_dict()["std"] is None
    two = MeasureResult.from_seeds([one.matrix, one.matrix + 0.1])
    assert two.to_dict()["std"][0][1] == 0.0707107
    result = Result(tasks=TASKS, affinity={"pairwise": one})
    result.auxiliary = {"a": rank_auxiliaries(one.matrix, one.std, 0, TASKS, 2)}
    assert [c["std"] for c in result.auxiliary["a"]] == [None, None]
    result.write(tmp_path)
    back = Result.read(tmp_path)
    assert back.affinity["pairwise"].std is None
    assert np.isnan(back.frame("pairwise", "std").to_numpy()).all()
    with open(tmp_path / "matrices" / "pairwise_std.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[1] == ["a", "", "", ""]
    page = write_report(result, tmp_path).read_text()
    assert "1 seed: no spread" in page and "±" not in page


def test_an_auxiliary_is_never_both_recommended_and_harmful():
    recommended_harmful = {"task": "b", "score": -0.003, "std": 0.0, "harmful": True,
                           "selected": True}
    assert _aux_cell(recommended_harmful) == "b -0.003±0.000 ✔"
    assert _aux_cell({**recommended_harmful, "selected": False}) == "b -0.003±0.000 ⚠"
    assert _aux_cell({**recommended_harmful, "score": 0.05, "harmful": False,
                      "selected": False, "std": None}) == "b +0.050"


def test_overlapping_groups_say_which_tasks_each_serves():
    entry = GroupingEntry(k=2, kind="groups", groups=[["a", "b", "c"], ["b"]],
                          served_by={"a": 0, "b": 1, "c": 0}, baseline="single_task",
                          expected_improvement=0.05, improvement=0.05, interval=[0.01, 0.09],
                          significant=True, worse_beyond_noise=False)
    assert group_lines(entry) == ["a, b, c (serves a, c)", "b (serves b)"]
    assert verdict([entry]).endswith(": a, b, c (serves a, c); b (serves b)")
    apart = entry.model_copy(update={"groups": [["a", "c"], ["b"]]})
    assert group_lines(apart) == ["a, c", "b"]  # a partition: nothing to explain


def test_k1_against_one_network_for_all_compares_nothing():
    same = GroupingEntry(k=1, kind="all_in_one", groups=[TASKS], best_groups=[TASKS],
                         baseline="all_in_one", improvement=None)
    assert is_the_baseline(same)
    assert not is_the_baseline(same.model_copy(update={
        "baseline": "single_task", "improvement": 0.01, "kind": "groups"}))
    # the verdict reads the k > 1 comparisons, not k = 1's absent one
    k2 = GroupingEntry(k=2, kind="all_in_one", groups=[TASKS], best_groups=[["a"], ["b", "c"]],
                       baseline="all_in_one", improvement=-0.02, interval=[-0.05, 0.01])
    assert verdict([same, k2]) == (
        "train all tasks in one network: it measured best; the best measured, k = 2 groups, "
        "differ by -2.0% in total loss, within noise (-5.0% to 1.0%); either is about as good")
    assert verdict([same]) == (
        "train all tasks in one network: it measured best of what was measured")


def test_a_heatmaps_colour_bar_reads_on_the_cells_scale():
    """Small lookahead values are labelled x 1e-3, and the colour bar spans the same scaled
    range; the conflict rate, a share, spans 0 to 1."""
    small = MeasureResult(np.array([[0, 0.004, -0.002], [0.001, 0, 0], [0, 0.003, 0]]), None)
    fig = heatmap(TASKS, small, "lookahead")
    image = fig.axes[0].images[0]
    assert image.get_clim() == (-4.0, 4.0)
    assert fig.axes[0].get_title() == "lookahead (x 1e-3)"
    rate = MeasureResult(np.array([[0, 0.75, 0.2], [0.75, 0, 0], [0.2, 0, 0]]), None)
    assert heatmap(TASKS, rate, "conflict_rate").axes[0].images[0].get_clim() == (0.0, 1.0)


def test_unmeasured_pairs_are_drawn_as_unmeasured():
    """A pair the budget did not train: both its cells masked and labelled n/m; the colour
    scale comes from the measured cells alone."""
    m = MeasureResult(np.array([[0, 0.9, -0.2], [0.9, 0, 0.1], [-0.2, 0.1, 0]]), None)
    fig = heatmap(TASKS, m, "pairwise", unmeasured=[["a", "b"]])
    image = fig.axes[0].images[0]
    assert image.get_array().mask[0, 1] and image.get_array().mask[1, 0]
    assert not image.get_array().mask[0, 2]
    assert image.get_clim() == (-0.2, 0.2)  # the measured cells, not the 0.9 fill
    texts = {(t.get_position(), t.get_text()) for t in fig.axes[0].texts}
    assert ((1, 0), "n/m") in texts and ((0, 1), "n/m") in texts


def test_a_result_document_round_trips_through_its_typed_parts(tmp_path):
    """``Result.read`` gives back the typed entries, verification and meta ``write`` wrote,
    field for field; fields a build did not set stay out of the JSON; a document whose
    entry is malformed is refused, naming what is wrong."""
    entry = GroupingEntry(k=2, groups=[["a", "b"], ["c"]], kind="groups", evidence="measured",
                          unmeasured_pairs=[["a", "b"]], baseline="single_task",
                          improvement=0.02, interval=[-0.01, 0.05], significant=False,
                          worse_beyond_noise=False)
    result = Result(tasks=TASKS, affinity={"pairwise": MeasureResult(np.eye(3), None)},
                    groupings=[entry], verification=Verification.model_validate(
                        {"seeds": [0, 500], "auxiliary": {"a": {"auxiliaries": ["b"]}}}),
                    meta=Meta(name="t", warnings=["w"]))
    doc = json.loads(result.write(tmp_path).read_text())
    assert "best_groups" not in doc["groupings"][0]  # not set: not written
    assert doc["groupings"][0]["unmeasured_pairs"] == [["a", "b"]]
    back = Result.read(tmp_path)
    assert back.groupings == [entry] and back.verification == result.verification
    assert back.meta == result.meta and back.verification.auxiliary["a"].auxiliaries == ["b"]
    doc["groupings"][0]["k"] = "two"
    with pytest.raises(ValueError, match=r"not a result document: .*groupings|k"):
        Result.from_dict(doc)


def test_a_sentence_gives_the_sizes_of_groups_too_many_to_list():
    """Up to 24 tasks a sentence lists each group's tasks; beyond, how many each holds."""
    few = GroupingEntry(k=2, groups=[["a", "b"], ["c"]])
    assert groups_text(few) == "a, b; c"
    many = GroupingEntry(k=2, groups=[[f"t{i}" for i in range(20)], [f"u{i}" for i in range(5)]])
    assert groups_text(many) == "of 20, 5 tasks: see groupings"


def test_a_decision_that_measured_worse_on_the_fresh_seed_says_higher():
    """Groups chosen by the expected loss whose fresh seed measured them worse: "higher",
    never "-0.3% lower"."""
    entry = GroupingEntry(k=2, kind="groups", groups=[["a", "b"], ["c"]], baseline="all_in_one",
                          expected_improvement=0.002, improvement=-0.003,
                          interval=[-0.1, 0.096])
    assert verdict([entry]) == (
        "train k = 2 groups (a, b; c): they measured 0.3% higher in total loss than one "
        "network for all tasks, within noise (-10% to 9.6%); either is about as good")
