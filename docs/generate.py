"""Write the generated parts of docs/: the task-set JSON Schema (taskset.schema.json) and its
field reference (taskset-fields.md), from the pydantic models the service and the command line
validate with. A test fails when they are stale: run `python docs/generate.py` after changing
the task-set models.

    python docs/generate.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


from affinity.taskset import taskset_schema  # noqa: E402

SCHEMA = Path(__file__).resolve().parent / "taskset.schema.json"
FIELDS = Path(__file__).resolve().parent / "taskset-fields.md"


def rendered() -> str:
    return json.dumps(taskset_schema(), indent=2, sort_keys=True) + "\n"


def _type(prop: dict, defs: dict) -> str:
    if "$ref" in prop:
        return "object"
    if "anyOf" in prop:
        return " or ".join(_type(p, defs) for p in prop["anyOf"])
    if "enum" in prop:
        return " | ".join(str(v) for v in prop["enum"])
    if "const" in prop:
        return repr(prop["const"])
    if prop.get("type") == "array":
        return f"list of {_type(prop.get('items', {}), defs)}"
    return str(prop.get("type", "any"))


def _limits(prop: dict) -> str:
    names = {"exclusiveMinimum": "> ", "minimum": ">= ", "exclusiveMaximum": "< ",
             "maximum": "<= ", "minLength": "length >= ", "maxLength": "length <= ",
             "minItems": "items >= ", "maxItems": "items <= "}
    found = [f"{text}{prop[key]}" for key, text in names.items() if key in prop]
    for option in prop.get("anyOf", []):
        found += [f"{text}{option[key]}" for key, text in names.items() if key in option]
    return ", ".join(found)


def fields_reference() -> str:
    """One table row per field of the task set, nested sections flattened to dotted paths."""
    schema = taskset_schema()
    defs = schema.get("$defs", {})
    rows: list[str] = []

    def walk(props: dict, required: set[str], prefix: str) -> None:
        for name, prop in props.items():
            path = f"{prefix}{name}"
            ref = prop.get("$ref") or next((p["$ref"] for p in prop.get("items", {}) and
                                            [prop["items"]] if "$ref" in p), None)
            default = json.dumps(prop["default"]) if "default" in prop else (
                "required" if name in required else "")
            text = " ".join((prop.get("description") or "").split())
            cells = [f"`{path}`", _type(prop, defs), default, _limits(prop), text]
            rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
            if ref:
                target = defs[ref.split("/")[-1]]
                inner = "[]." if prop.get("type") == "array" else "."
                walk(target.get("properties", {}), set(target.get("required", [])),
                     f"{path}{inner}")

    walk(schema["properties"], set(schema.get("required", [])), "")
    return ("# Task-set fields\n\nGenerated from the task-set models by `python docs/generate.py`"
            " (do not edit); docs/taskset.md explains them with examples.\n\n"
            "| field | type | default | limits | description |\n|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n")


OUTPUTS = {SCHEMA: rendered, FIELDS: fields_reference}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    args = parser.parse_args()
    stale = 0
    for path, render in OUTPUTS.items():
        if args.check:
            fresh = path.is_file() and path.read_text() == render()
            print(f"{path.name}: {'up to date' if fresh else 'stale'}")
            stale += not fresh
        else:
            path.write_text(render())
            print(f"wrote {path}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
