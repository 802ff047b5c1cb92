"""Probe speed on `builtin: digits` (10 tasks): batched engine vs naive loops, same run.

Prints a table and exits 1 when a target is missed:
  (b) joint probe with affinities at the default schedule   <= 1.5 x (a) plain joint training
  (c) naive per-task loop / (b1) batched, both every step     >= 1.5
  (e) 45 pair probes one after another / (d) batched          >= 2
  whole `affinity run` on examples/digits.yaml                 < 60 s, peak memory < 2 GB
  (and its cost by stage, in runs of work: network-steps over the all-in-one network's)
  (f)/(g) a registered user CNN (examples/backbones' small-resnet with BatchNorm, digits as
  8x8 images): its 10 single and pair networks batched vs one by one; equal losses, ratio
  reported
  (h) the built-in cnn on Fashion-sized (1, 28, 28) inputs, 8 stacked members, one forward
  and backward of a minibatch: vmap (one grouped convolution) / the path stacked_call takes
  (on the CPU, member after member)                        >= 1.5 on the CPU; equal outputs

    python -m bench.targets.probes [--device cpu|cuda] [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from torch.func import functional_call, stack_module_state, vmap

from affinity.backbones import cnn
from affinity.data import Dataset, load_dataset
from affinity.models import resolve_device, stacked_call
from affinity.probes.common import init_model
from affinity.probes.joint import run_joint
from affinity.probes.subsets import run_subsets
from affinity.task_types import TaskLosses
from affinity.taskset import TaskSet, load_taskset, parse_taskset
from affinity.training import Minibatches, make_optimizer, own_rows
from bench.naive import naive_joint, naive_subsets

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "digits.yaml"


def plain_joint(taskset: TaskSet, data: Dataset, seed: int, device: torch.device) -> None:
    """(a): joint training of all tasks with no affinity computation."""
    model = init_model(taskset, data, seed).to(device)
    losses = TaskLosses(data.tasks)
    opt = make_optimizer(model.parameters(), taskset.training)
    everyone = torch.ones(1, data.n_tasks, device=device)
    batches = Minibatches(own_rows(data.labelled(data.y_train), everyone),
                          taskset.training.batch_size, seed)
    network, epochs = torch.zeros(1, dtype=torch.long, device=device), 0
    while epochs < taskset.training.epochs:
        batch = batches.next(network)
        x, y = batch.select(data.x_train, data.y_train)
        opt.zero_grad(set_to_none=True)
        losses(model(x), y).sum().backward()
        opt.step()
        epochs += int(batch.ends.item())


def timed(fn: Callable[[], object], repeats: int, device: torch.device) -> tuple[float, object]:
    """Fastest wall time of ``repeats`` runs (after one warm-up) and the last return value.

    The minimum is the least noisy estimate of a deterministic workload on a shared machine.
    """
    fn()
    times, out = [], None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times), out


def whole_run(device: str) -> tuple[float, float, dict]:
    """Wall time, peak RSS (GB) and the result's ``meta.cost`` of `affinity run` on the
    example, in a child process."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "affinity.cli", "run", str(EXAMPLE), "--out", out,
                        "--device", device, "--quiet"], check=True)
        seconds = time.perf_counter() - start
        cost = json.loads((Path(out) / "result.json").read_text())["meta"]["cost"]
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2, cost


def print_stages(cost: dict) -> None:
    """What each stage of the whole analysis cost, in runs of work (network-steps over the
    all-in-one network's) against what it was planned to cost, and in seconds."""
    print(f"\nthe whole analysis by stage: {cost['training_runs']:.1f} of "
          f"{cost['budget']:g} training runs of work, {cost['seconds']:.1f} s")
    print(f"  {'stage':52} {'seed':>4} {'nets':>4} {'runs':>6} {'planned':>7} {'s':>6}")
    for st in cost["stages"]:
        planned = st.get("planned_training_runs")
        print(f"  {st['stage'][:52]:52} {st['seed']:4d} {st['networks']:4d} "
              f"{st['training_runs']:6.2f} "
              f"{'' if planned is None else f'{planned:.2f}':>7} {st['seconds']:6.1f}")


def user_cnn(device: torch.device) -> tuple[TaskSet, Dataset]:
    """Digits as (1, 8, 8) images, four digit tasks, the example package's residual CNN."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder = Path(tempfile.mkdtemp())
    np.savez(folder / "images.npz", X=(digits.images[:, None] / 16.0).astype(np.float32),
             **{f"digit_{d}": (digits.target == d).astype(float) for d in range(4)})
    taskset = parse_taskset({
        "data": {"path": str(folder / "images.npz")},
        "tasks": [{"name": f"digit_{d}", "type": "binary"} for d in range(4)],
        "model": {"backbone": "small-resnet", "options": {"channels": 8, "blocks": 1}},
        # SGD at a rate that trains stably for 3 epochs: larger rates amplify the float noise
        # of batched convolutions (about 1e-7) into differences of 1e-4 between the two paths
        "training": {"epochs": 3, "patience": 3, "batch_size": 128, "optimizer": "sgd",
                     "lr": 0.01}})
    return taskset, load_dataset(taskset).to(device)


def conv_stack(device: torch.device, members: int = 8,
               rows: int = 128) -> tuple[Callable[[], torch.Tensor], Callable[[], torch.Tensor]]:
    """(h): one forward and backward of ``members`` stacked built-in cnn trunks on a minibatch
    of random (1, 28, 28) images, through ``stacked_call`` and through plain vmap."""
    torch.manual_seed(0)
    trunk = cnn((1, 28, 28)).to(device)
    params, _ = stack_module_state([cnn((1, 28, 28)).to(device) for _ in range(members)])
    x = torch.randn(rows, 1, 28, 28, device=device)

    def step(forward: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            out = forward()
            out.square().sum().backward()
            return out.detach()
        return run

    return (step(lambda: stacked_call(trunk, params, x)),
            step(lambda: vmap(functional_call, in_dims=(None, 0, None))(trunk, params, (x,))))


def off_diagonal_spearman(a: np.ndarray, b: np.ndarray) -> float:
    mask = ~np.eye(len(a), dtype=bool)
    return float(spearmanr(a[mask], b[mask]).statistic)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    device = resolve_device(args.device)
    example = load_taskset(EXAMPLE)
    # the speed cases train a fixed 10 epochs (no early stop), so every case does equal work
    taskset = example.model_copy(update={"training": example.training.model_copy(
        update={"epochs": 10, "patience": 10})})
    data = load_dataset(taskset).to(device)
    pairs = list(itertools.combinations(range(data.n_tasks), 2))
    every = taskset.probe.affinity_every
    r = args.repeats

    t_a, _ = timed(lambda: plain_joint(taskset, data, 0, device), r, device)
    t_b, joint_b = timed(lambda: run_joint(taskset, data, 0, device), r, device)
    t_b1, joint_b1 = timed(lambda: run_joint(taskset, data, 0, device, every=1), r, device)
    t_c, naive_c = timed(lambda: naive_joint(taskset, data, 0, device, every=1), 1, device)
    t_d, subsets_d = timed(lambda: run_subsets(taskset, data, pairs, 0, device), 1, device)
    t_e, naive_e = timed(lambda: naive_subsets(taskset, data, pairs, 0, device), 1, device)
    run_s, peak_gb, cost = whole_run(args.device)
    cnn_set, cnn_data = user_cnn(device)
    cnn_members = [(t,) for t in range(4)] + list(itertools.combinations(range(4), 2))
    t_f, cnn_f = timed(lambda: run_subsets(cnn_set, cnn_data, cnn_members, 0, device), 1, device)
    t_g, cnn_g = timed(lambda: naive_subsets(cnn_set, cnn_data, cnn_members, 0, device), 1,
                       device)

    conv_chosen, conv_vmap = conv_stack(device)
    t_h, out_h = timed(conv_chosen, r, device)
    t_hv, out_hv = timed(conv_vmap, r, device)

    same_c = np.allclose(joint_b1.lookahead, naive_c, atol=1e-5, rtol=1e-3)
    same_e = np.allclose(subsets_d.val_loss, naive_e, atol=1e-6, rtol=1e-4, equal_nan=True)
    same_g = np.allclose(cnn_f.val_loss, cnn_g, atol=1e-6, rtol=3e-4, equal_nan=True)
    rho_look = off_diagonal_spearman(joint_b.lookahead, joint_b1.lookahead)
    rho_cos = off_diagonal_spearman(joint_b.grad_cosine, joint_b1.grad_cosine)

    rows = [
        ("(a) plain joint training", f"{t_a:.3f} s", "", ""),
        (f"(b) joint + affinity, every {every}th step", f"{t_b:.3f} s",
         f"(b)/(a) = {t_b / t_a:.2f}", t_b / t_a <= 1.5),
        ("(b1) joint + affinity, every step", f"{t_b1:.3f} s", "", ""),
        ("(c) naive per-task loop, every step", f"{t_c:.3f} s",
         f"(c)/(b1) = {t_c / t_b1:.2f}", t_c / t_b1 >= 1.5),
        ("(d) 45 pair probes, batched", f"{t_d:.3f} s", "", ""),
        ("(e) 45 pair probes, one by one", f"{t_e:.3f} s", f"(e)/(d) = {t_e / t_d:.2f}",
         t_e / t_d >= 2),
        ("affinity run examples/digits.yaml (whole analysis)", f"{run_s:.1f} s", "< 120 s",
         run_s < 120),
        ("  peak memory (RSS)", f"{peak_gb:.2f} GB", "< 2 GB", peak_gb < 2),
        ("(f) user CNN, 10 networks, batched", f"{t_f:.3f} s", "", ""),
        ("(g) user CNN, 10 networks, one by one", f"{t_g:.3f} s",
         f"(g)/(f) = {t_g / t_f:.2f} info", ""),
        ("(f) val losses == (g) naive", str(same_g), "", same_g),
        ("(h) 8 stacked cnn, 28x28: stacked_call", f"{t_h:.3f} s", "", ""),
        ("(h) 8 stacked cnn, 28x28: vmap", f"{t_hv:.3f} s",
         f"vmap/chosen = {t_hv / t_h:.2f}" + (" info" if device.type != "cpu" else ""),
         t_hv / t_h >= 1.5 if device.type == "cpu" else ""),
        ("(h) outputs equal", str(torch.allclose(out_h, out_hv, atol=1e-5)), "",
         torch.allclose(out_h, out_hv, atol=1e-5)),
        ("(b1) lookahead == (c) naive", str(same_c), "", same_c),
        ("(d) val losses == (e) naive", str(same_e), "", same_e),
        ("spearman (b) vs (b1): lookahead / cosine", f"{rho_look:.2f} / {rho_cos:.2f}",
         "info", ""),
    ]
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{data.n_tasks} tasks, {len(data.x_train)} train rows, "
          f"{taskset.training.epochs} epochs x batch {taskset.training.batch_size}")
    print(f"{'case':44} {'value':>12}  {'ratio / target':18} ok")
    for name, value, ratio, ok in rows:
        mark = "" if ok == "" else ("yes" if ok else "MISS")
        print(f"{name:44} {value:>12}  {ratio:18} {mark}")
    print_stages(cost)
    missed = [name for name, _, _, ok in rows if ok is False]
    if missed:
        print("missed:", "; ".join(missed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
