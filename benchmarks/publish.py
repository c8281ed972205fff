"""What the benchmarks share: where results go, their tables, how a call is timed.

Each report is printed and written as markdown, its figures as JSON, under benchmarks/results/.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

T = TypeVar("T")


def publish(folder: Path, name: str, report: str, figures: dict[str, Any]) -> None:
    """Print `report`, then write it to folder/NAME.md and `figures` to folder/NAME.json."""
    print(report)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.md").write_text(report + "\n")
    (folder / f"{name}.json").write_text(json.dumps(figures, indent=2))
    print(f"\nwritten: {folder / f'{name}.md'}, {folder / f'{name}.json'}")


def markdown_table(rows: list[dict[str, Any]], digits: int = 2) -> str:
    """Rows of equal keys as a markdown table (pandas' `to_markdown`); floats rounded to `digits`."""
    return str(pd.DataFrame(rows).to_markdown(index=False, floatfmt=f".{digits}f"))


def timed(work: Callable[[], T]) -> tuple[T, float]:
    """What `work()` returns, and the wall-clock seconds it took."""
    started = time.perf_counter()
    out = work()
    return out, time.perf_counter() - started
