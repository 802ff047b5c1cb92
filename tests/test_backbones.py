"""Backbones from the registry: the built-ins and the example package in examples/backbones
(installed by the set-up command), in the library and over HTTP."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import httpx
import numpy as np
import pytest

from affinity.analysis import analyze
from affinity.backbones import GROUP, registry
from affinity.data import load_dataset
from affinity.probes.joint import run_joint
from affinity.probes.subsets import run_subsets
from affinity.taskset import InvalidTaskSet, parse_taskset
from api.settings import Settings
from bench.naive import naive_joint, naive_subsets
from tests.conftest import digits_frame
from tests.service_helpers import LiveServer, store_url, wait_for

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "own_backbone.py"
TASKS = [{"name": "zero", "column": "digit_0", "type": "binary"},
         {"name": "one", "column": "digit_1", "type": "binary"},
         {"name": "ink", "type": "regression"}]
RESNET = {"backbone": "small-resnet", "options": {"channels": 8, "blocks": 1}}


@pytest.fixture
def images(tmp_path):
    """300 digits as 1x8x8 images with three task columns, as an NPZ file."""
    frame = digits_frame(300)
    x = frame[[f"pixel_{i}" for i in range(64)]].to_numpy().reshape(-1, 1, 8, 8)
    path = tmp_path / "digits.npz"
    np.savez(path, X=x, digit_0=frame["digit_0"].to_numpy(),
             digit_1=frame["digit_1"].to_numpy(), ink=frame["ink"].to_numpy())
    return path


def test_registry_holds_the_builtins_and_the_installed_example():
    """The built-ins are registered through the entry-point group like any package's."""
    assert {"mlp", "cnn", "small-resnet"} <= {ep.name for ep in entry_points(group=GROUP)}
    backbones = registry()
    assert {"mlp", "cnn", "small-resnet"} <= set(backbones)
    assert backbones["small-resnet"].options == {"channels": 16, "blocks": 2, "norm": "batch"}
    assert backbones["mlp"].options == {"hidden": None}
    assert "residual" in backbones["small-resnet"].doc


@pytest.mark.parametrize("norm", ["batch", "group"])
@pytest.mark.parametrize("own_rows", [False, True])
def test_a_registered_backbone_trains_stacked_as_alone(images, device, norm, own_rows):
    """BatchNorm's running statistics are per member (stacked like the weights); members
    with rows of their own and running statistics train group by group (no padding rows in
    their batch statistics). Either way each member is what it would be trained alone."""
    if own_rows:  # zero and one labelled on disjoint halves
        with np.load(images) as npz:
            arrays = {k: v.astype(float) if k != "X" else v for k, v in npz.items()}
        arrays["digit_0"][150:], arrays["digit_1"][:150] = np.nan, np.nan
        np.savez(images, **arrays)
    # SGD: Adam turns the float noise of gradients that are 0 in exact arithmetic (a conv
    # bias before BatchNorm) into steps of lr, which BatchNorm's running mean then shows
    ts = parse_taskset({"data": {"path": str(images)}, "tasks": TASKS,
                        "model": {**RESNET, "options": {**RESNET["options"], "norm": norm}},
                        "training": {"epochs": 3, "batch_size": 64, "patience": 1,
                                     "optimizer": "sgd", "lr": 0.02}})
    data = load_dataset(ts).to(device)
    members = [(0,), (1,), (2,), (0, 1), (0, 1, 2)]
    fast = run_subsets(ts, data, members, 0, device)
    slow = naive_subsets(ts, data, members, 0, device)
    np.testing.assert_allclose(fast.val_loss, slow, rtol=3e-4, atol=1e-6)
    assert fast.params["trunk.0.weight"].shape == (5, 8, 1, 3, 3)  # channels option taken
    if norm == "batch":  # running statistics moved, one set per member
        means = fast.params["trunk.1.running_mean"]
        assert means.shape == (5, 8) and (means[0] != means[1]).any()
        joint = run_joint(ts, data, 0, device, every=3)
        np.testing.assert_allclose(joint.lookahead, naive_joint(ts, data, 0, device, every=3),
                                   atol=1e-5, rtol=1e-3)


def test_a_backbone_that_does_not_fit_the_data_is_an_invalid_task_set(tmp_path, device):
    digits_frame(120).to_csv(tmp_path / "d.csv", index=False)
    ts = parse_taskset({"data": {"path": str(tmp_path / "d.csv"),
                                 "features": [f"pixel_{i}" for i in range(64)]},
                        "tasks": TASKS, "model": RESNET})
    with pytest.raises(InvalidTaskSet, match=r"model.backbone: 'small-resnet' does not run on "
                                             r"inputs of shape \(64,\): small-resnet needs"):
        analyze(ts, device=device)
    with pytest.raises(InvalidTaskSet, match="model.options: backbone 'small-resnet' does not "
                                             "take these options"):
        parse_taskset({"data": {"builtin": "digits"}, "tasks": TASKS,
                       "model": {"backbone": "small-resnet", "options": {"width": 3}}})


def test_service_lists_backbones_and_runs_a_job_on_one(tmp_path, images):
    settings = Settings(data_dir=tmp_path / "data", database_url=store_url("sqlite", tmp_path),
                        poll_seconds=0.05, device="cpu")
    with LiveServer(settings, worker_thread=True) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        listed = client.get("/v1/backbones").json()["backbones"]
        assert {"mlp", "cnn", "small-resnet"} <= {b["name"] for b in listed}
        resnet = next(b for b in listed if b["name"] == "small-resnet")
        assert resnet["options"] == {"channels": 16, "blocks": 2, "norm": "batch"}
        ds = client.post("/v1/datasets", files={"file": ("digits.npz", io.BytesIO(
            images.read_bytes()), "application/octet-stream")}).json()
        job = {"data": {"dataset": ds["id"]}, "tasks": TASKS, "model": RESNET,
               "training": {"epochs": 1}, "probe": {"seeds": 1, "transfer_steps": 10},
               "budget": {"training_runs": 1000}}
        bad = client.post("/v1/jobs", json={**job, "model": {"backbone": "resnet50"}})
        assert bad.status_code == 422 and "model.backbone" in bad.text
        submitted = client.post("/v1/jobs", json=job)
        assert submitted.status_code == 202, submitted.text
        done = wait_for(client, submitted.json()["id"], {"succeeded", "failed"})
        assert done["status"] == "succeeded", done
        result = client.get(f"/v1/jobs/{done['id']}/result").json()
        assert result["meta"]["taskset"]["model"]["backbone"] == "small-resnet"
        assert len(result["groupings"]) == 3


def test_the_own_backbone_example_runs_as_written(tmp_path):
    """Bounded by work, not by time: the timeout only guards against a hang."""
    proc = subprocess.run([sys.executable, str(EXAMPLE), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert doc["verdict"] in proc.stdout and (tmp_path / "out" / "report.html").exists()
    assert doc["meta"]["taskset"]["model"]["backbone"] == "small-resnet"
    cost = doc["meta"]["cost"]
    assert f"cost: {cost['training_runs']:.1f} of 24 training runs" in proc.stdout
    assert cost["training_runs"] <= 1.25 * cost["budget"]
    assert doc["meta"]["n_train"] + doc["meta"]["n_val"] == 900
    assert not any(s.get("cut") for s in cost["stages"])  # every network trained out
    assert "untrained_pairs" not in doc["meta"]  # the budget affords every pair
    assert len(doc["verification"]["confirmation_seeds"]) >= 1
