"""What the benchmarks share: where results go, their tables, how a call is timed.

Each report is printed and written as markdown, its figures as JSON, under benchmarks/results/.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def publish(folder: Path, name: str, report: str, figures: dict[str, Any]) -> None:
    """Print `report`, then write it to folder/NAME.md and `figures` to folder/NAME.json."""
    print(report)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.md").write_text(report + "\n")
    (folder / f"{name}.json").write_text(json.dumps(figures, indent=2))
    print(f"\nwritten: {folder / f'{name}.md'}, {folder / f'{name}.json'}")


def markdown_table(rows: list[dict[str, Any]], digits: int = 2) -> str:
    """Rows of equal keys as a markdown table; floats rounded to `digits`."""
    keys = list(rows[0])
    cell = lambda v: f"{v:.{digits}f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(keys) + " |", "|---" * len(keys) + "|"]
    return "\n".join(lines + ["| " + " | ".join(cell(r[k]) for k in keys) + " |" for r in rows])


def timed(work: Callable[[], T]) -> tuple[T, float]:
    """What `work()` returns, and the wall-clock seconds it took."""
    started = time.perf_counter()
    out = work()
    return out, time.perf_counter() - started
