"""Your own backbone on image data, from Python: 900 of scikit-learn's 8x8 digits as images,
three attribute tasks, the small residual CNN with BatchNorm that examples/backbones registers
(`pip install -e examples/backbones`). Its cost is counted in work (at most about 20 trainings
of one network), so it computes the same on any machine. Prints the verdict, the cost and where
the report is.

    python examples/own_backbone.py [--out runs/own-backbone]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

import affinity
from affinity.report import write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/own-backbone"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    d = digits.target
    rows = slice(0, 900)
    np.savez(args.out / "digits.npz", X=digits.images[rows, None] / 16.0,  # (N, 1, 8, 8)
             even=(d[rows] % 2 == 0).astype(float), large=(d[rows] >= 5).astype(float),
             loop=np.isin(d[rows], [0, 6, 8, 9]).astype(float))
    taskset = affinity.parse_taskset({
        "name": "own-backbone",
        "data": {"path": str(args.out / "digits.npz")},
        "tasks": [{"name": t, "type": "binary"} for t in ("even", "large", "loop")],
        "model": {"backbone": "small-resnet", "options": {"channels": 8, "blocks": 1}},
        "training": {"epochs": 20, "batch_size": 128, "patience": 3},
        "budget": {"training_runs": 24},
    })
    result = affinity.analyze(taskset)
    result.write(args.out)
    report = write_report(result, args.out)
    cost = result.meta.cost
    print(result.verdict)
    print(f"cost: {cost.training_runs:.1f} of {cost.budget:g} training runs")
    print(f"report: {report}")


if __name__ == "__main__":
    main()
