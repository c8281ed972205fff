"""The temporal encoder (`encoder="conv"`) on windows of a real series (SKAB's pump): what it sees, how it
detects, and everything the MLP keeps: save/load, warm start, ONNX and TorchScript under the parity gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from vae import InputError, VAEDetector, windows
from vae.model import ChannelsToSteps, StepsToChannels

WINDOW = 8
OPTIONS = {"window": WINDOW, "encoder": "conv", "epochs": 12, "hidden_dims": (16,), "device": "cpu"}


@pytest.fixture(scope="module")
def series(pump: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A steady stretch of the pump's normal run to train on, and the next 600 s to score."""
    return pump.iloc[5000:8000], pump.iloc[8000:8600]


@pytest.fixture(scope="module")
def conv(series) -> VAEDetector:
    return VAEDetector(seed=0, **OPTIONS).fit(series[0])


def test_convolutions_see_each_channel_as_a_sequence_of_the_windows_steps(series):
    flat = torch.as_tensor(windows(series[1], WINDOW), dtype=torch.float32)
    seen = StepsToChannels(WINDOW, series[1].shape[1])(flat)
    first = series[1].to_numpy(np.float32)[:WINDOW].T  # (channels, steps) of the first window
    np.testing.assert_array_equal(seen[0].numpy(), first)
    assert torch.equal(ChannelsToSteps()(seen), flat)


def test_a_conv_detector_flags_a_stuck_sensor_and_not_the_steady_run(conv, series):
    column = series[1].columns[2]
    stuck = series[1].assign(**{column: series[0][column].mean() + 6 * series[0][column].std()})
    normal_rate = conv.predict(series[1]).is_anomaly.mean()
    assert normal_rate < 0.1
    assert conv.predict(stuck).is_anomaly.mean() > 0.9


def test_save_and_load_score_alike(conv, series, tmp_path):
    loaded = VAEDetector.load(conv.save(tmp_path / "conv"))
    assert loaded.config.model.encoder == "conv" and loaded.vae_.kind == "conv"
    np.testing.assert_array_equal(loaded.score(series[1]), conv.score(series[1]))
    assert loaded.threshold_ == conv.threshold_


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exports_pass_the_parity_gate(conv, series, tmp_path, fmt):
    report = conv.export(tmp_path / f"conv.{fmt}", fmt, series[1])
    assert report.path.exists() and report.n_rows == len(series[1]) - WINDOW + 1
    assert report.relative_diff <= report.tolerance


def test_a_warm_start_continues_from_the_champions_weights(conv, series):
    before = conv.vae_.encoder[1].weight.detach().clone()
    warm = VAEDetector(seed=1, **(OPTIONS | {"epochs": 1})).fit(series[0], warm_start=conv)
    moved = (warm.vae_.encoder[1].weight - before).abs().max()
    fresh = VAEDetector(seed=1, **(OPTIONS | {"epochs": 1})).fit(series[0])
    assert moved < (fresh.vae_.encoder[1].weight - before).abs().max() / 3
    with pytest.raises(InputError, match="different architecture"):
        VAEDetector(seed=0, **(OPTIONS | {"encoder": "mlp"})).fit(series[0], warm_start=conv)


def test_convolutions_need_windows():
    with pytest.raises(ValidationError, match="set window > 1"):
        VAEDetector(encoder="conv")
