"""Channels whose level drifts in training, seen by their shape: chosen, centered, kept for good."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from vae import InputError, StreamState, VAEDetector, advance
from vae.datasets import load_skab
from vae.preprocessing import CenteredChannels, drifting_channels

ROOT = Path(__file__).resolve().parents[2]
WINDOW = 16
OPTIONS = {"epochs": 30, "hidden_dims": (32,), "latent_dim": 4, "seed": 0, "device": "cpu"}


@pytest.fixture(scope="module")
def climbing() -> pd.DataFrame:
    """A steady oscillation beside one that climbs through the run (as a heating fluid's temperature)."""
    rng = np.random.default_rng(0)
    t = np.arange(1600)
    return pd.DataFrame(
        {
            "flow": np.sin(t / 7) + 0.1 * rng.normal(size=len(t)),
            "temperature": t / 100 + np.sin(t / 5) + 0.1 * rng.normal(size=len(t)),
        }
    )


@pytest.fixture(scope="module")
def centered(climbing: pd.DataFrame) -> VAEDetector:
    return VAEDetector(window=WINDOW, drifting_channels="centered", **OPTIONS).fit(climbing.iloc[:600])


def test_the_channels_that_drift_in_a_skab_runs_training_part_are_its_temperatures():
    run = load_skab(ROOT / "data" / "timeseries" / "skab" / "valve1" / "5.csv").frame.iloc[:400]
    chosen = [run.columns[c] for c in drifting_channels(run.to_numpy())]
    assert chosen and set(chosen) <= {"Temperature", "Thermocouple"}


def test_centering_removes_each_windows_mean_from_the_chosen_channels_only():
    x = torch.randn(5, 4 * 3) + 10
    out = CenteredChannels(window=4, n_channels=3, channels=(1,))(x)
    steps, before = out.reshape(5, 4, 3), x.reshape(5, 4, 3)
    torch.testing.assert_close(steps[:, :, 1].mean(dim=1), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(steps[:, :, [0, 2]], before[:, :, [0, 2]])
    torch.testing.assert_close(CenteredChannels(4, 3, (1,))(out), out)  # idempotent


def test_a_climbing_channel_at_a_new_level_is_flagged_only_when_its_level_is_modelled(climbing, centered):
    later = climbing.iloc[800:]
    levels = VAEDetector(window=WINDOW, **OPTIONS).fit(climbing.iloc[:600])
    assert levels.preprocessor_.centered == () and centered.preprocessor_.centered == (1,)
    assert levels.predict(later).is_anomaly.mean() > 0.5
    assert centered.predict(later).is_anomaly.mean() < 0.05


def test_a_burst_in_a_centered_channel_is_still_flagged(climbing, centered):
    later = climbing.iloc[800:1000].reset_index(drop=True)
    later.iloc[100:110, 1] += 3.0  # the temperature jumps for ten steps and comes back
    flags = pd.Series(centered.predict(later).is_anomaly, centered.score_index(later))
    assert flags.loc[100:124].mean() > 0.5 and flags.loc[: 99 - WINDOW].mean() < 0.1


def test_centered_channels_are_kept_by_save_load_export_streams_and_warm_starts(climbing, centered, tmp_path):
    new = climbing.iloc[800:1000]
    loaded = VAEDetector.load(centered.save(tmp_path / "det"))
    assert loaded.preprocessor_.centered == (1,)
    np.testing.assert_array_equal(loaded.score(new), centered.score(new))
    for fmt in ("onnx", "torchscript"):  # the artifact takes raw windows and centers them itself
        assert centered.export(tmp_path / f"det.{fmt}", fmt, new).relative_diff <= 1e-5
    state, out = advance(centered, StreamState(), new.to_numpy()[:50], 0.0, centered.threshold_)
    state, rest = advance(centered, state, new.to_numpy()[50:], 0.0, centered.threshold_)
    streamed = np.concatenate([out.score, rest.score])
    np.testing.assert_allclose(streamed, centered.score(new), rtol=1e-4)
    warm = VAEDetector(window=WINDOW, **OPTIONS).fit(climbing.iloc[200:800], warm_start=centered)
    assert warm.preprocessor_.centered == (1,)  # the champion's preprocessing, whatever this config says
    with pytest.raises(InputError, match="warm_start was trained on"):
        VAEDetector(window=WINDOW, **OPTIONS).fit(climbing.iloc[:600, :1], warm_start=centered)


def test_centering_needs_windows():
    with pytest.raises(ValidationError, match="set window > 1"):
        VAEDetector(drifting_channels="centered")
