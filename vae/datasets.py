"""Labelled datasets on disk: ADBench-style `.npz` files (keys X and y, 1 = anomaly)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vae.errors import InputError


@dataclass(frozen=True)
class LabelledSet:
    """Rows X (n_samples, n_features) and labels y (1 = anomaly, 0 = normal)."""

    name: str
    X: np.ndarray
    y: np.ndarray


def load_npz(path: Path) -> LabelledSet:
    """Read one `.npz` (no pickles); the name is the file stem without its ADBench number prefix.

    Raises:
        InputError: the file is missing, unreadable, or lacks X or y.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            X, y = f["X"].astype(np.float64), f["y"].astype(int)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read labelled set {path}: {exc}") from None
    return LabelledSet(path.stem.split("_", 1)[-1], X, y)


def find_shipped(data_dir: Path, name: str) -> Path:
    """Path of the shipped tabular set called `name` (data/tabular/*_NAME.npz)."""
    matches = sorted((data_dir / "tabular").glob(f"*_{name}.npz"))
    if not matches:
        known = sorted(p.stem.split("_", 1)[-1] for p in (data_dir / "tabular").glob("*.npz"))
        raise InputError(f"no shipped dataset {name!r} in {data_dir / 'tabular'}; known: {known}")
    return matches[0]
