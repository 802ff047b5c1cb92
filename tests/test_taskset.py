"""Task-set validation: every invalid field is rejected, by the parser and by the CLI (exit 2)."""

from __future__ import annotations

import copy
import json

import pytest

from affinity.cli import main
from affinity.data import load_dataset
from affinity.taskset import InvalidTaskSet, load_taskset, parse_taskset
from tests.conftest import FAST_PROBE, FAST_TRAINING, digits_frame, write_taskset

VALID = {
    "name": "t",
    "data": {"path": "data.csv", "features": [f"pixel_{i}" for i in range(64)]},
    "tasks": [{"name": "a", "column": "digit_0", "type": "binary"},
              {"name": "b", "column": "label", "type": "multiclass"},
              {"name": "c", "column": "ink", "type": "regression"}],
    "training": FAST_TRAINING,
    "probe": FAST_PROBE,
    "measures": ["grad_cosine", "pairwise"],
}


def mutate(path: str, value: object) -> dict:
    """A copy of VALID with the value at a dotted path (list indices as numbers) replaced."""
    doc = copy.deepcopy(VALID)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = doc
    for p in parents:
        node = node.setdefault(p, {}) if isinstance(p, str) else node[p]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


DELETE = object()

# (where, new value, text the error must contain)
INVALID = [
    ("name", 5, "name: Input should be a valid string"),
    ("data", DELETE, "data: Field required"),
    ("data.builtin", "digits", "data: exactly one of path, dataset, builtin, in_memory is "
                              "required"),
    ("data.path", DELETE, "data: exactly one of path, dataset, builtin, in_memory is "
                          "required"),
    ("data.builtin", "mnist", "data.builtin: Input should be 'digits'"),
    ("data.features", [], "data.features: List should have at least 1 item"),
    ("data.features", ["nope"], "data.features[0]: column 'nope' not found"),
    ("data.features", ["label"], "data.features[0]: column 'label' is a task or split column"),
    ("data.features", DELETE, "data.features: column 'parity' is not numeric (features default"),
    ("data.split_column", "nope", "data.split_column: column 'nope' not found"),
    ("data.split_column", "digit_0", "data.split_column: the split column is also a task column"),
    ("data.path", "missing.csv", "data.path: file 'missing.csv' not found"),
    ("data.path", "data.txt", "data.path: unsupported format '.txt'"),
    ("data.colour", "red", "data.colour: unknown key"),
    ("tasks", [{"name": "a", "type": "binary"}], "tasks: List should have at least 2 items"),
    ("tasks.1.name", "a", "tasks[1].name: duplicate task name 'a'"),
    ("tasks.1.name", "", "tasks[1].name: String should have at least 1 character"),
    ("tasks.0.type", "bin", "tasks[0].type: Input should be 'binary', 'multiclass' or "
                            "'regression'; got 'bin'"),
    ("tasks.0.type", DELETE, "tasks[0].type: Field required"),
    ("tasks.0.column", "nope", "tasks[0].column: column 'nope' not found"),
    ("tasks.0.column", "label",
     "tasks[0].type: binary task 'a' has 10 classes for 300 labelled rows; use multiclass"),
    ("tasks.2.type", "multiclass", "tasks[2].type: multiclass task 'c' has"),  # a numeric target
    ("tasks.1.type", "regression", "tasks[1].type: regression labels of 'b' must be numeric"),
    ("tasks.0.weight", 2, "tasks[0].weight: unknown key"),
    ("model.backbone", "resnet", "model.backbone: not a registered backbone; installed: "),
    ("model.options", {"depth": 3}, "model.options: backbone 'mlp' does not take these options"),
    ("model.options", {"hidden": [3]}, "model.options: give hidden as model.hidden"),
    ("model.backbone", "cnn", "model.backbone: cnn needs image arrays"),
    ("model.hidden", [0], "model.hidden[0]: Input should be greater than 0"),
    ("model.hidden", [], "model.hidden: List should have at least 1 item"),
    ("training.epochs", 0, "training.epochs: Input should be greater than 0; got 0"),
    ("training.batch_size", -1, "training.batch_size: Input should be greater than 0"),
    ("training.lr", 0, "training.lr: Input should be greater than 0"),
    ("training.optimizer", "lbfgs", "training.optimizer: Input should be 'adam', 'adamw' or "
                                    "'sgd'; got 'lbfgs'"),
    ("training.momentum", 1.0, "training.momentum: Input should be less than 1"),
    ("training.weight_decay", -0.1, "training.weight_decay: Input should be greater than or "
                                    "equal to 0"),
    ("training.patience", 0, "training.patience: Input should be greater than 0"),
    ("training.steps", 5, "training.steps: unknown key"),
    ("budget.training_runs", 0, "budget.training_runs: Input should be greater than 0"),
    ("budget.seeds", 2, "budget.seeds: unknown key"),
    ("probe.epochs", 10, "probe: probe.epochs moved to training.epochs"),
    ("probe.lr", 0.1, "probe: probe.lr moved to training.lr"),
    ("probe.seeds", "three", "probe.seeds: Input should be a valid integer"),
    ("probe.val_fraction", 1.5, "probe.val_fraction: Input should be less than 1"),
    ("probe.lookahead", "second", "probe.lookahead: Input should be 'exact' or 'first_order'"),
    ("probe.steps", 5, "probe.steps: unknown key"),
    ("measures", ["gradcos"], "measures[0]: Input should be 'grad_cosine'"),
    ("measures", [], "measures: List should have at least 1 item"),
    ("measures", ["cka", "cka"], "measures[1]: duplicate measure 'cka'"),
    ("grouping.budgets", [0], "grouping.budgets[0]: Input should be greater than 0"),
    ("grouping.budgets", [1, 4], "grouping.budgets[1]: k=4 exceeds the number of tasks (3)"),
    ("grouping.measure", "cka", "grouping.measure: 'cka' is not in measures"),
    ("grouping.rule", "max", "grouping.rule: Input should be 'sum' or 'mean'"),
    ("grouping.candidates", 0, "grouping.candidates: Input should be greater than 0"),
    ("grouping.verify", "maybe", "grouping.verify: Input should be a valid boolean"),
    ("auxiliary.primary", ["zz"], "auxiliary.primary[0]: unknown task 'zz'"),
    ("auxiliary.max_aux", 0, "auxiliary.max_aux: Input should be greater than 0"),
    ("extra", 1, "extra: unknown key"),
]


@pytest.fixture
def folder(tmp_path):
    digits_frame(300).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "data.txt").write_text("x")
    return tmp_path


@pytest.mark.parametrize(("where", "value", "expected"), INVALID, ids=[i[0] for i in INVALID])
def test_invalid_field_exits_2_and_names_it(folder, capsys, where, value, expected):
    path = write_taskset(folder, mutate(where, value))
    code = main(["run", str(path), "--out", str(folder / "out"), "--quiet"])
    err = capsys.readouterr().err
    if expected is None:
        assert code == 0, err
    else:
        assert code == 2
        assert expected in err
        assert not (folder / "out" / "result.json").exists()


@pytest.mark.parametrize(("doc", "says"), [
    ({"trainig": {}}, "trainig: unknown key (did you mean 'training'?)"),
    ({"training": {"epoch": 3}}, "training.epoch: unknown key (did you mean 'epochs'?)"),
    ({"data": {"builtin": "digits", "standardise": {}}},
     "data.standardise: unknown key (did you mean 'standardize'?)"),
    ({"colour": 1}, "colour: unknown key"),  # nothing close: no guess
])
def test_a_misspelt_key_gets_the_closest_known_one(doc, says):
    base = {"data": {"builtin": "digits"}, "tasks": [{"name": "digit_0", "type": "binary"},
                                                     {"name": "digit_1", "type": "binary"}]}
    with pytest.raises(InvalidTaskSet) as refused:
        parse_taskset({**base, **doc})
    assert str(refused.value) == says


def test_parse_reports_every_bad_field_at_once():
    doc = mutate("training.epochs", 0)
    doc["tasks"][1]["type"] = "ordinal"
    with pytest.raises(InvalidTaskSet) as info:
        parse_taskset(doc)
    assert "tasks[1].type" in str(info.value) and "training.epochs" in str(info.value)


def test_yaml_and_json_give_the_same_task_set(tmp_path):
    a = load_taskset(write_taskset(tmp_path, VALID, "t.yaml"))
    b = load_taskset(write_taskset(tmp_path, VALID, "t.json"))
    assert a == b
    assert a.tasks[0].source == "digit_0" and a.tasks[0].name == "a"


def test_relative_data_path_resolves_against_the_task_set_file(tmp_path, monkeypatch):
    """From Python as on the command line: a relative data path is the task set file's
    neighbour, whatever the working folder; a parsed task set resolves against the working
    folder."""
    (tmp_path / "sets").mkdir()
    (tmp_path / "elsewhere").mkdir()
    digits_frame(120).to_csv(tmp_path / "sets" / "data.csv", index=False)
    monkeypatch.chdir(tmp_path / "elsewhere")
    ts = load_taskset(write_taskset(tmp_path / "sets", VALID, "t.yaml"))
    assert ts.folder == tmp_path / "sets" and ts.data.path == "data.csv"
    assert load_dataset(ts).n_tasks == 3
    assert load_dataset(ts.model_copy()).n_tasks == 3  # copies keep the folder
    with pytest.raises(InvalidTaskSet, match="data.path: file 'data.csv' not found"):
        load_dataset(parse_taskset(VALID))


def test_defaults_fill_in(tmp_path):
    ts = parse_taskset({"data": {"builtin": "digits"},
                        "tasks": [{"name": "digit_0", "type": "binary"},
                                  {"name": "digit_1", "type": "binary"}]})
    assert ts.measures == ["grad_cosine", "lookahead", "cka", "transfer", "pairwise"]
    assert ts.budgets == [1, 2]  # default 1..3, capped at the number of tasks
    assert ts.model.hidden is None and ts.probe.seeds is None  # backbone default; planner
    assert ts.training.epochs == 200 and ts.training.patience == 5  # to convergence
    assert ts.training_runs == 20.0  # at least 20
    eight = ts.model_copy(update={"tasks": ts.tasks * 4})
    assert eight.training_runs == 20.0
    twelve = ts.model_copy(update={"tasks": ts.tasks * 6})
    assert twelve.training_runs == 24.0  # at most 24


def test_unreadable_file_is_invalid(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [unclosed")
    assert main(["run", str(bad), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "not valid YAML/JSON" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "o")]) == 2
    (tmp_path / "list.json").write_text(json.dumps([1, 2]))
    with pytest.raises(InvalidTaskSet, match="task set must be a mapping; got list"):
        load_taskset(tmp_path / "list.json")


@pytest.mark.parametrize("data", [
    {"builtin": "digits"}, {"path": "x.csv"}, {"dataset": "ds_1"}, {"in_memory": True},
    {"in_memory": False, "path": "a.csv"}, {"path": "x", "dataset": "d"}, {}, {"path": None},
    {"in_memory": False}, {"builtin": "digits", "in_memory": True},
])
def test_the_json_schema_and_the_model_agree_on_the_data_source(data):
    """Exactly one source: the published JSON Schema says what the model checks."""
    import jsonschema

    from affinity.taskset import taskset_schema

    doc = {"data": data, "tasks": [{"name": "a", "type": "binary"},
                                   {"name": "b", "type": "binary"}]}
    try:
        parse_taskset(doc)
        valid = True
    except InvalidTaskSet:
        valid = False
    assert jsonschema.Draft202012Validator(taskset_schema()).is_valid(doc) == valid
