"""Labelled datasets on disk: ADBench-style `.npz` files (keys X and y, 1 = anomaly)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

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


def inject_faults(
    X: np.ndarray, faults: list[tuple[str, int]], rows_per_fault: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Copies of normal rows with one (kind, column) fault each, and which fault (its position in `faults`).

    Kinds: "stuck" holds the column at 6 standard deviations above its mean (a sensor stuck high);
    "drift" adds an offset growing from 3 to 8 standard deviations (a sensor drifting away);
    "noise" adds Gaussian noise of 5 standard deviations (a loose contact). `X` is never modified.

    Raises:
        InputError: an unknown kind or a column outside X.
    """
    rng = np.random.default_rng(seed)
    mean, sd = X.mean(axis=0), X.std(axis=0) + 1e-12
    rows, kinds = [], []
    for k, (kind, column) in enumerate(faults):
        if not 0 <= column < X.shape[1]:
            raise InputError(f"fault column {column} is outside the {X.shape[1]} columns")
        faulty = X[rng.choice(len(X), rows_per_fault, replace=False)].copy()
        if kind == "stuck":
            faulty[:, column] = mean[column] + 6 * sd[column]
        elif kind == "drift":
            faulty[:, column] += np.linspace(3, 8, rows_per_fault) * sd[column]
        elif kind == "noise":
            faulty[:, column] += rng.normal(0, 5 * sd[column], rows_per_fault)
        else:
            raise InputError(f"unknown fault kind {kind!r}; choose stuck, drift or noise")
        rows.append(faulty)
        kinds.append(np.full(rows_per_fault, k))
    return np.concatenate(rows), np.concatenate(kinds)


@dataclass(frozen=True)
class LabelledSeries:
    """One experiment: sensor readings in time order (a datetime index) and 0/1 labels per step."""

    name: str
    frame: pd.DataFrame
    labels: np.ndarray


SKAB_GROUPS = ("valve1", "valve2", "other")


def skab_files(folder: Path, patterns: tuple[str, ...] = ("*/*.csv",)) -> list[Path]:
    """SKAB experiment files under `folder` matching `patterns`, in SKAB's order (group, then number)."""
    found = {path for pattern in patterns for path in folder.glob(pattern) if path.parent.name in SKAB_GROUPS}
    return sorted(found, key=lambda p: (SKAB_GROUPS.index(p.parent.name), int(p.stem)))


def load_skab(path: Path) -> LabelledSeries:
    """One SKAB experiment file (`;`-separated, a `datetime` column, sensors, `anomaly`, `changepoint`).

    Raises:
        InputError: the file is missing, unreadable, or lacks the `datetime` or `anomaly` column.
    """
    try:
        frame = pd.read_csv(path, sep=";", index_col="datetime", parse_dates=True).sort_index()
        labels = frame.pop("anomaly").to_numpy(int)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read SKAB file {path}: {exc}") from None
    return LabelledSeries(
        f"{path.parent.name}/{path.stem}", frame.drop(columns="changepoint", errors="ignore"), labels
    )
