"""Where every benchmark's results go: the markdown report printed and written, the figures as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def publish(folder: Path, name: str, report: str, figures: dict[str, Any]) -> None:
    """Print `report`, then write it to folder/NAME.md and `figures` to folder/NAME.json."""
    print(report)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.md").write_text(report + "\n")
    (folder / f"{name}.json").write_text(json.dumps(figures, indent=2))
    print(f"\nwritten: {folder / f'{name}.md'}, {folder / f'{name}.json'}")
