"""SKAB's outlier protocol: its split and its step-wise metrics, on cases with a known answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vae.datasets import load_skab, skab_files
from vae.errors import InputError
from vae.evaluation import series_metrics, series_split

SKAB = Path(__file__).resolve().parents[2] / "data" / "timeseries" / "skab"


def test_metrics_count_steps_as_skab_does():
    truth = np.array([0, 0, 0, 1, 1, 1, 1, 0, 0, 0])
    flags = np.array([0, 1, 0, 0, 1, 1, 1, 1, 0, 0])  # 3 hits, 1 miss, 2 false alarms among 6 normal
    r = series_metrics(truth, flags)
    assert r.f1 == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    assert r.far == pytest.approx(100 * 2 / 6) and r.mar == pytest.approx(100 * 1 / 4)
    assert (r.n_steps, r.n_anomalous) == (10, 4)
    perfect = series_metrics(truth, truth)
    assert (perfect.f1, perfect.far, perfect.mar) == (1.0, 0.0, 0.0)
    with pytest.raises(InputError, match="length"):
        series_metrics(truth, flags[:-1])


def test_the_split_trains_on_the_first_400_steps_and_scores_the_rest():
    fit, scored = series_split(1000)
    assert (fit.start, fit.stop, scored.start, scored.stop) == (0, 400, 400, 1000)
    with pytest.raises(InputError, match="nothing to score"):
        series_split(400)


def test_the_shipped_experiments_load_in_skabs_order_with_their_labels():
    files = skab_files(SKAB)
    assert len(files) == 34 and [f.parent.name for f in files[:2]] == ["valve1", "valve1"]
    assert [f.stem for f in files[:3]] == ["0", "1", "2"] and files[-1].parent.name == "other"
    first = load_skab(files[0])
    assert first.name == "valve1/0" and len(first.frame) == len(first.labels) > 400
    assert first.frame.index.is_monotonic_increasing and first.frame.columns[0] == "Accelerometer1RMS"
    assert set(np.unique(first.labels)) == {0, 1} and first.labels[:400].sum() == 0  # training part normal
    assert "anomaly" not in first.frame and "changepoint" not in first.frame
