"""Write the generated parts of docs/: the task-set JSON Schema (taskset.schema.json), from
the pydantic models the service and the command line validate with. A test fails when the
file here is stale: run `python docs/generate.py` after changing the task-set models.

    python docs/generate.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from affinity.taskset import taskset_schema  # noqa: E402

SCHEMA = Path(__file__).resolve().parent / "taskset.schema.json"


def rendered() -> str:
    return json.dumps(taskset_schema(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    args = parser.parse_args()
    if args.check:
        fresh = SCHEMA.is_file() and SCHEMA.read_text() == rendered()
        print(f"{SCHEMA.name}: {'up to date' if fresh else 'stale'}")
        return 0 if fresh else 1
    SCHEMA.write_text(rendered())
    print(f"wrote {SCHEMA}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
