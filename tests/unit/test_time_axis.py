"""A timestamp column is the time axis, never a feature: NAB's `timestamp,value` layout fits as read."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from vae import VAEDetector
from vae.errors import InputError

OPTIONS = {"epochs": 3, "hidden_dims": (8,), "latent_dim": 2, "device": "cpu", "seed": 0}


def _nab_like(n: int = 600, gap_at: int = 300) -> pd.DataFrame:
    """NAB's CSV layout read without parse_dates: text timestamps every 5 minutes, one hour missing."""
    times = pd.date_range("2014-02-14 14:30:00", periods=n + 12, freq="5min").delete(
        range(gap_at, gap_at + 12)
    )
    value = np.sin(np.arange(n) / 20) + np.random.default_rng(0).normal(0, 0.1, n)
    text = pd.DataFrame({"timestamp": times.strftime("%Y-%m-%d %H:%M:%S"), "value": value}).to_csv(
        index=False
    )
    return pd.read_csv(io.StringIO(text))


def test_a_csv_with_a_timestamp_column_fits_on_its_values_and_scores_by_time():
    frame = _nab_like()
    assert frame["timestamp"].dtype == object  # as a user's read_csv gives it
    detector = VAEDetector(window=8, **OPTIONS).fit(frame.iloc[:400])
    assert detector.preprocessor_.columns == ("value",)  # the time axis is not a feature
    new = frame.iloc[400:]
    scored = detector.predict_frame(new)
    assert isinstance(scored.index, pd.DatetimeIndex) and scored.index.name == "timestamp"
    assert scored.index[0] == pd.Timestamp(new["timestamp"].iloc[7])  # each window's last step
    assert len(scored) == len(new) - 7


def test_gaps_stay_visible_in_the_timestamps():
    frame = _nab_like(gap_at=500)
    detector = VAEDetector(**OPTIONS).fit(frame.iloc[:400])  # window 1: a row per score
    steps = detector.score_index(frame.iloc[400:]).to_series().diff().dropna()
    assert steps.max() == pd.Timedelta(minutes=65) and steps.min() == pd.Timedelta(minutes=5)


def test_windows_refuse_rows_out_of_time_order_and_two_time_axes():
    frame = _nab_like()
    with pytest.raises(InputError, match="not in time order by their timestamp column 'timestamp'"):
        VAEDetector(window=8, **OPTIONS).fit(frame.iloc[:400].iloc[::-1])
    twice = frame.assign(when=pd.to_datetime(frame["timestamp"]))
    with pytest.raises(InputError, match="several timestamp columns"):
        VAEDetector(window=8, **OPTIONS).fit(twice)
    VAEDetector(**OPTIONS).fit(frame.iloc[::-1])  # rows on their own (window 1): order does not matter


def test_a_datetime_index_names_the_scores_and_orders_the_windows_too():
    frame = _nab_like()
    indexed = frame.set_index(pd.to_datetime(frame.pop("timestamp")))
    detector = VAEDetector(window=8, **OPTIONS).fit(indexed.iloc[:400])
    assert detector.score_index(indexed.iloc[400:]).equals(indexed.index[407:])
    with pytest.raises(InputError, match="not in time order by their index"):
        detector.score(indexed.iloc[400:].iloc[::-1])
