"""Data loading: formats, splits, label encoding, standardisation and missing labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from affinity.data import load_dataset
from affinity.taskset import InvalidTaskSet, parse_taskset
from tests.conftest import digits_frame

PIXELS = [f"pixel_{i}" for i in range(64)]
TASKS = [{"name": "zero", "column": "digit_0", "type": "binary"},
         {"name": "label", "type": "multiclass"},
         {"name": "ink", "type": "regression"}]


def taskset(path, **data):
    return parse_taskset({"data": {"path": str(path), "features": PIXELS, **data},
                          "tasks": TASKS})


def test_csv_encodes_each_task_type(tmp_path):
    frame = digits_frame(400)
    frame.to_csv(tmp_path / "d.csv", index=False)
    data = load_dataset(taskset(tmp_path / "d.csv"))
    assert [t.n_outputs for t in data.tasks] == [1, 10, 1]
    assert data.tasks[1].classes == tuple(f"d{i}" for i in range(10))  # string labels sorted
    assert len(data.x_train) + len(data.x_val) == 400 and len(data.x_val) == 80
    y = torch.cat([data.y_train, data.y_val])
    assert set(y[:, 0].tolist()) == {0.0, 1.0}
    assert set(y[:, 1].tolist()) == set(map(float, range(10)))
    assert data.y_train[:, 2].mean().abs() < 1e-5  # regression standardised on train rows
    assert data.y_train[:, 2].std(unbiased=False).sub(1).abs() < 1e-4
    assert data.x_train.mean(0).abs().max() < 1e-5  # features standardised on train rows


def test_split_column_and_formats_agree(tmp_path):
    frame = digits_frame(300)
    frame["split"] = np.where(np.arange(300) < 200, "train", np.where(np.arange(300) < 250,
                                                                         "VAL", "test"))
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    arrays = {c: frame[c].to_numpy() for c in ("digit_0", "ink")}
    arrays["split"] = frame["split"].to_numpy().astype("U5")
    arrays["label"] = frame["label"].to_numpy().astype("U3")
    np.savez(tmp_path / "d.npz", X=frame[PIXELS].to_numpy(), **arrays)
    csv = load_dataset(taskset(tmp_path / "d.csv", split_column="split"))
    parquet = load_dataset(taskset(tmp_path / "d.parquet", split_column="split"))
    npz = load_dataset(parse_taskset({"data": {"path": str(tmp_path / "d.npz"),
                                               "split_column": "split"}, "tasks": TASKS}))
    assert len(csv.x_train) == 200 and len(csv.x_val) == 50  # test rows held out
    for other in (parquet, npz):
        for name in ("x_train", "y_train", "x_val", "y_val"):
            torch.testing.assert_close(getattr(other, name), getattr(csv, name), equal_nan=True)


def test_missing_labels_keep_the_row(tmp_path):
    frame = digits_frame(300)
    frame.loc[::3, "digit_0"] = np.nan
    frame.loc[::2, "label"] = ""
    frame.to_csv(tmp_path / "d.csv", index=False)
    data = load_dataset(taskset(tmp_path / "d.csv"))
    y = torch.cat([data.y_train, data.y_val])
    assert len(y) == 300  # no row dropped
    assert torch.isnan(y[:, 0]).sum() == 100 and torch.isnan(y[:, 1]).sum() == 150
    assert not torch.isnan(y[:, 2]).any()


def test_npz_images_and_cnn(tmp_path):
    frame = digits_frame(200)
    x = frame[PIXELS].to_numpy().reshape(-1, 1, 8, 8)
    np.savez(tmp_path / "img.npz", X=x, digit_0=frame["digit_0"].to_numpy(),
             ink=frame["ink"].to_numpy())
    ts = parse_taskset({"data": {"path": str(tmp_path / "img.npz")},
                        "model": {"backbone": "cnn", "hidden": [8, 16]},
                        "tasks": [TASKS[0], TASKS[2]]})
    data = load_dataset(ts)
    assert data.input_shape == (1, 8, 8)


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.assign(digit_0=1), "tasks[0].column: task 'zero' has a single class (1)"),
    (lambda f: f.assign(ink=5.0), "tasks[2].column: regression target 'ink' is constant"),
    (lambda f: f.assign(ink=np.inf), "tasks[2].column: task 'ink' has infinite labels"),
    (lambda f: f.assign(pixel_3=np.nan), "data.features[3]: column 'pixel_3' has 300 missing "
                                         "values"),
    (lambda f: f.assign(pixel_3=np.inf), "data.features: 300 rows have NaN or infinite"),
    (lambda f: f.iloc[:0], "data.path: 'd.csv' has no rows (columns: pixel_0, pixel_1"),
    (lambda f: f.assign(split="train"), "data.split_column: needs at least 2 train rows and 1 "
                                         "val row; got 300 and 0"),
    (lambda f: f.assign(split="holdout"), "data.split_column: unknown value 'holdout' in row 0"),
    (lambda f: f.assign(digit_0=np.nan), "tasks[0].column: task 'zero' has fewer than 2"),
])
def test_bad_data_is_refused_with_the_field(tmp_path, change, message):
    frame = change(digits_frame(300).assign(split="train"))
    if "split" in message:
        extra = {"split_column": "split"}
    else:
        frame = frame.drop(columns="split")
        extra = {}
    frame.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(InvalidTaskSet) as info:
        load_dataset(taskset(tmp_path / "d.csv", **extra))
    assert message in str(info.value)


def test_npz_object_arrays_are_refused(tmp_path):
    np.savez(tmp_path / "o.npz", X=np.zeros((10, 2)), digit_0=np.array([0, 1] * 5, dtype=object),
             ink=np.arange(10.0))
    ts = parse_taskset({"data": {"path": str(tmp_path / "o.npz")}, "tasks": [TASKS[0], TASKS[2]]})
    with pytest.raises(InvalidTaskSet, match="data.path: cannot read 'o.npz'.*allow_pickle"):
        load_dataset(ts)


def test_path_outside_root_is_refused(tmp_path):
    inner = tmp_path / "root"
    inner.mkdir()
    digits_frame(50).to_csv(tmp_path / "d.csv", index=False)
    ts = taskset("../d.csv")
    with pytest.raises(InvalidTaskSet, match="data.path: '../d.csv' lies outside the data root"):
        load_dataset(ts, base_dir=inner, root=inner)
    assert len(load_dataset(ts, base_dir=inner).x_train) == 40  # fine without a root
    (inner / "link.csv").symlink_to(tmp_path / "d.csv")  # a symlink out of the root
    with pytest.raises(InvalidTaskSet, match="data.path: 'link.csv' lies outside the data root"):
        load_dataset(taskset("link.csv"), base_dir=inner, root=inner)
    absolute = taskset(str(tmp_path / "d.csv"))
    with pytest.raises(InvalidTaskSet, match="lies outside the data root"):
        load_dataset(absolute, base_dir=inner, root=inner)


def test_truncated_parquet_is_refused(tmp_path):
    digits_frame(100).to_parquet(tmp_path / "d.parquet")
    raw = (tmp_path / "d.parquet").read_bytes()
    (tmp_path / "d.parquet").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InvalidTaskSet, match="data.path: cannot read 'd.parquet'"):
        load_dataset(taskset(tmp_path / "d.parquet"))


def test_builtin_digits_matches_contract():
    ts = parse_taskset({"data": {"builtin": "digits"},
                        "tasks": [{"name": f"digit_{d}", "type": "binary"} for d in range(10)]})
    data = load_dataset(ts)
    assert len(data.x_train) + len(data.x_val) == 1797 and data.input_shape == (64,)
    # with fewer tasks the other label columns must not leak in as features
    few = parse_taskset({"data": {"builtin": "digits"},
                         "tasks": [{"name": f"digit_{d}", "type": "binary"} for d in (0, 1)]})
    assert load_dataset(few).input_shape == (64,)
    images = parse_taskset({"data": {"builtin": "digits"}, "model": {"backbone": "cnn"},
                            "tasks": [{"name": f"digit_{d}", "type": "binary"} for d in (0, 1)]})
    assert load_dataset(images).input_shape == (1, 8, 8)
    y = torch.cat([data.y_train, data.y_val])
    assert torch.equal(y.sum(1), torch.ones(1797))  # one-vs-rest: exactly one positive per row
    assert pd.Series(y.sum(0).numpy()).between(170, 190).all()


def test_a_numeric_target_declared_multiclass_is_refused(tmp_path):
    digits_frame(300).to_csv(tmp_path / "d.csv", index=False)
    ts = parse_taskset({"data": {"path": str(tmp_path / "d.csv"), "features": PIXELS},
                        "tasks": [TASKS[0], {"name": "ink", "type": "multiclass"}]})
    with pytest.raises(InvalidTaskSet, match=r"tasks\[1\]\.type: multiclass task 'ink' has "
                                             r"\d+ classes for 300 labelled rows"):
        load_dataset(ts)
    load_dataset(parse_taskset({**ts.model_dump(), "tasks": [TASKS[0], TASKS[1]]}))  # 10 kept


def test_a_numeric_target_declared_binary_is_pointed_to_regression(tmp_path):
    """The first hint is the right one: not multiclass (which would be refused next), but
    regression."""
    digits_frame(300).to_csv(tmp_path / "d.csv", index=False)
    ts = parse_taskset({"data": {"path": str(tmp_path / "d.csv"), "features": PIXELS},
                        "tasks": [TASKS[0], {"name": "ink", "type": "binary"}]})
    with pytest.raises(InvalidTaskSet, match=r"tasks\[1\]\.type: binary task 'ink' has \d+ "
                                             r"classes for 300 labelled rows; use regression: "
                                             r"a numeric target with many values"):
        load_dataset(ts)


def test_default_features_name_a_left_out_target(tmp_path):
    """Only some targets listed as tasks: the others would be features. One with missing
    labels is refused, naming it; a complete one that gives a task's label away is a
    warning in the data (and so in the result and the report)."""
    frame = digits_frame(300).drop(columns=["label", "parity"])
    frame["digit_1"] = frame["digit_1"].astype(float)
    frame.loc[::4, "digit_1"] = np.nan  # a sibling target, partly labelled
    frame.to_csv(tmp_path / "d.csv", index=False)
    ts = parse_taskset({"data": {"path": str(tmp_path / "d.csv")}, "tasks": [TASKS[0], TASKS[2]]})
    with pytest.raises(InvalidTaskSet, match="data.features: 'digit_1' has missing values. "
                                             "Features default to every column"):
        load_dataset(ts)
    frame["digit_1"] = frame["digit_1"].fillna(0)
    frame["zero_again"] = frame["digit_0"]  # a copy of the task's own label
    frame.to_csv(tmp_path / "d.csv", index=False)
    data = load_dataset(ts)
    assert len(data.warnings) == 1
    assert data.warnings[0].startswith("data.features: column 'zero_again' has correlation "
                                       "1.00 with task 'zero'")
    listed = parse_taskset({"data": {"path": str(tmp_path / "d.csv"), "features": PIXELS},
                            "tasks": [TASKS[0], TASKS[2]]})
    assert load_dataset(listed).warnings == ()  # features listed by the user: no guessing
