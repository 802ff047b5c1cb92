"""What a benchmark prints at its end and exits with."""

from __future__ import annotations


def verdict(missed: list[str]) -> int:
    """Print the missed targets (or that all were met); the benchmark's exit code."""
    if missed:
        print("\nmissed:\n  " + "\n  ".join(missed))
        return 1
    print("\nall targets met")
    return 0
