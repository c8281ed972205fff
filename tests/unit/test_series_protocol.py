"""SKAB's outlier protocol (its split and step-wise metrics) and NAB's window score, on known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vae.datasets import load_skab, skab_files
from vae.errors import InputError
from vae.evaluation import series_metrics, series_split
from vae.nab_scoring import Profile, nab_score, normalized

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


def test_nab_score_reproduces_nabs_own_known_answer():
    """NAB's `testScoringAllMetrics`: 100 rows, two 5-row windows, alerts at the first window's first two
    rows and 3 rows past its end, the second window missed; all weights 1 -> -0.9540."""
    flags = np.zeros(100, bool)
    flags[[10, 11, 17]] = True
    score = nab_score(flags, [(10, 14), (60, 64)], profile=Profile(tp=1.0, fp=1.0, fn=1.0))
    assert score.raw == pytest.approx(-0.9540, abs=1e-4) and score.windows == 2


def test_nab_score_bounds_and_probation():
    windows = [(200, 249), (600, 699)]
    at_starts = np.zeros(1000, bool)
    at_starts[[200, 600]] = True
    assert nab_score(at_starts, windows).normalized == pytest.approx(100.0)
    assert nab_score(np.zeros(1000, bool), windows).normalized == 0.0
    late = np.zeros(1000, bool)
    late[[249, 699]] = True  # each window's last row: caught, worth almost nothing
    assert 45 < nab_score(late, windows).normalized < 55
    early_alarm = at_starts.copy()
    early_alarm[100] = True  # before any window: the whole fp weight
    assert nab_score(early_alarm, windows).raw == pytest.approx(2 - 0.11)
    assert nab_score(early_alarm, windows, start=150).raw == pytest.approx(2.0)  # in probation
    assert nab_score(at_starts, windows, start=300).windows == 1  # the first window lies in probation
    both = normalized([nab_score(at_starts, windows), nab_score(np.zeros(1000, bool), windows)])
    assert both == pytest.approx(50.0)
    with pytest.raises(InputError, match="outside 1000 rows"):
        nab_score(at_starts, [(990, 1005)])
