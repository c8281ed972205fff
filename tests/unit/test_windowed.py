"""Detectors trained on sliding windows of a real series (SKAB's pump), and scoring it as a stream."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vae import InputError, ModelFileError, Segments, StreamState, VAEDetector, advance, ema, windows
from vae.calibration import conformal_threshold

WINDOW = 8


@pytest.fixture(scope="module")
def series(pump: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """3000 s of the pump's normal run to train on, the next 600 s to score.

    The run wanders between operating levels over tens of minutes (a model trained on its first hour flags
    much of the next ten minutes); this stretch is steady, so flags there mean the model is wrong.
    """
    return pump.iloc[5000:8000], pump.iloc[8000:8600]


@pytest.fixture(scope="module")
def windowed(series) -> VAEDetector:
    options = {"epochs": 8, "kl_warmup_epochs": 2, "hidden_dims": (32,), "latent_dim": 4, "device": "cpu"}
    return VAEDetector(window=WINDOW, seed=0, **options).fit(series[0])


def test_one_score_per_full_window_labelled_by_its_last_step(windowed, series):
    new = series[1]
    scores = windowed.score(new)
    assert scores.shape == (len(new) - WINDOW + 1,)
    assert windowed.score_index(new).equals(new.index[WINDOW - 1 :])
    parts = windowed.score_components(new)
    assert np.allclose(parts["score"], scores, atol=1e-5) and parts.index[0] == new.index[WINDOW - 1]


def test_scores_equal_a_row_detector_on_the_flattened_windows(windowed, series):
    flat = windows(series[1], WINDOW)
    pre = windowed.preprocessor_
    assert pre is not None and pre.n_features == WINDOW * series[1].shape[1] == flat.shape[1]
    np.testing.assert_allclose(pre.check(series[1]), flat)


def test_calibration_uses_the_newest_steps_not_overlapping_copies(series):
    X = series[0].to_numpy()
    det = VAEDetector(window=WINDOW, epochs=1, hidden_dims=(8,), latent_dim=2, seed=3)
    train, hold = det.split_holdout([X])
    assert np.array_equal(np.concatenate(train + hold), X)  # contiguous: the tail is held out
    assert len(hold[0]) >= 2 / det.config.target_fpr


def test_no_window_spans_the_gap_between_segments(windowed, series):
    new = series[1]
    before, after = new.iloc[:100], new.iloc[130:300]  # 30 dropped rows between them
    scores = windowed.score(Segments([before, after]))
    expected = np.concatenate([windowed.score(before), windowed.score(after)])
    np.testing.assert_allclose(scores, expected, rtol=1e-6)  # float32 batching
    assert len(scores) == (100 - WINDOW + 1) + (170 - WINDOW + 1)
    labels = windowed.score_index(Segments([before, after]))
    assert labels.equals(before.index[WINDOW - 1 :].append(after.index[WINDOW - 1 :]))
    short = Segments([new.iloc[:3], new.iloc[10:60]])  # a piece shorter than the window adds no score
    assert len(windowed.score(short)) == 50 - WINDOW + 1


def test_a_split_series_trains_on_windows_within_its_pieces(series):
    X = series[0]
    pieces = Segments([X.iloc[:1000], X.iloc[1010:]])
    det = VAEDetector(window=WINDOW, epochs=2, hidden_dims=(8,), latent_dim=2, seed=0).fit(pieces)
    train, hold = det.split_holdout([X.iloc[:1000].to_numpy(), X.iloc[1010:].to_numpy()])
    assert [len(p) for p in train] == [1000, len(X) - 1010 - sum(map(len, hold))]
    assert det.calibration_terms_ is not None and len(det.calibration_terms_) == len(hold[0]) - WINDOW + 1


def test_contributions_are_per_column_and_sum_to_the_reconstruction_term(windowed, series):
    new = series[1].iloc[:50]
    contributions = windowed.feature_contributions(new)
    assert list(contributions.columns) == list(new.columns) and len(contributions) == 50 - WINDOW + 1
    recon = windowed.score_components(new)["reconstruction"]
    np.testing.assert_allclose(contributions.sum(axis=1), recon, rtol=1e-4)


def test_a_shifted_sensor_is_flagged_and_named(windowed, series):
    new = series[1].copy()
    new.iloc[300:360, new.columns.get_loc("Thermocouple")] += 6 * series[0]["Thermocouple"].std()
    flags = windowed.predict(new).is_anomaly
    steps = np.arange(WINDOW - 1, len(new))
    inside = (steps >= 300) & (steps < 360)
    assert flags[inside].mean() > 0.8 and flags[steps < 300].mean() < 0.05
    assert windowed.feature_contributions(new.iloc[300:360]).mean().idxmax() == "Thermocouple"


def test_save_load_and_onnx_export_keep_the_window(windowed, series, tmp_path):
    loaded = VAEDetector.load(windowed.save(tmp_path / "det"))
    assert loaded.config.window == WINDOW
    np.testing.assert_array_equal(loaded.score(series[1]), windowed.score(series[1]))
    report = windowed.export(tmp_path / "det.onnx", "onnx", series[1])
    assert report.relative_diff <= 1e-5


def test_too_short_series_and_mismatched_warm_start_are_refused(windowed, series):
    with pytest.raises(InputError, match="shorter than the window size 8"):
        windowed.score(series[1].iloc[: WINDOW - 1])
    with pytest.raises(InputError, match="warm_start uses windows of 8 step"):
        VAEDetector(window=4, epochs=1, hidden_dims=(32,), latent_dim=4).fit(series[0], warm_start=windowed)
    with pytest.raises(InputError, match="too few windows of 8 steps"):
        VAEDetector(window=WINDOW, min_rows=32).fit(series[0].iloc[:38], X_val=series[1])


def test_smoothed_threshold_is_the_quantile_of_the_smoothed_calibration_stream(windowed, series):
    assert windowed.smoothed_threshold(0.0) == windowed.threshold_
    _, held_out = windowed.split_holdout([series[0].to_numpy()])
    calibration_scores = windowed.score(held_out[0])  # in time order
    expected = conformal_threshold(ema(calibration_scores, 0.9), windowed.threshold_fpr_)
    assert windowed.smoothed_threshold(0.9) == pytest.approx(expected, rel=1e-5)


def test_smoothing_restarts_at_each_gap_of_the_calibration_series(windowed, series, tmp_path):
    det = VAEDetector.load(windowed.save(tmp_path / "copy"))
    before, after = series[1].iloc[:300], series[1].iloc[320:]  # 20 dropped rows between them
    det.infer_threshold(Segments([before, after]), fpr=0.5)  # a median: sensitive to every smoothed score
    assert det.calibration_runs_ == (300 - WINDOW + 1, 280 - WINDOW + 1)
    scores = det.score(before), det.score(after)
    per_run = conformal_threshold(np.concatenate([ema(s, 0.9) for s in scores]), 0.5)
    across_gap = conformal_threshold(ema(np.concatenate(scores), 0.9), 0.5)
    assert det.smoothed_threshold(0.9) == pytest.approx(per_run, rel=1e-6)
    assert per_run != pytest.approx(across_gap, rel=1e-3)  # the data make the gap matter
    reloaded = VAEDetector.load(det.save(tmp_path / "reloaded"))
    assert reloaded.smoothed_threshold(0.9) == det.smoothed_threshold(0.9)


def test_detectors_saved_before_calibration_runs_load_as_one_run(windowed, tmp_path):
    folder = windowed.save(tmp_path / "det")
    meta = json.loads((folder / "detector.json").read_text())
    del meta["calibration_runs"]  # the format before runs were kept
    (folder / "detector.json").write_text(json.dumps(meta))
    loaded = VAEDetector.load(folder)
    assert loaded.calibration_runs_ == (len(windowed.calibration_scores_),)
    assert loaded.smoothed_threshold(0.9) == windowed.smoothed_threshold(0.9)  # fit's holdout is one run
    meta["calibration_runs"] = [1, 2]
    (folder / "detector.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="calibration runs cover 3 scores"):
        VAEDetector.load(folder)


@pytest.mark.parametrize("chunks", [1, 7, 600])
def test_a_stream_in_chunks_scores_like_the_whole_series(windowed, series, chunks):
    new, beta = series[1], 0.9
    threshold = windowed.smoothed_threshold(beta)
    state, parts = StreamState(), []
    for rows in np.array_split(new.to_numpy(), chunks):
        state, out = advance(windowed, state, rows, beta, threshold)
        parts.append(out)
    whole = windowed.score(new)
    np.testing.assert_allclose(np.concatenate([p.score for p in parts]), whole, rtol=1e-4)  # float32 batching
    smoothed = np.concatenate([p.smoothed for p in parts])
    np.testing.assert_allclose(smoothed, ema(whole, beta), rtol=1e-4)
    assert np.concatenate([p.step for p in parts]).tolist() == list(range(WINDOW - 1, len(new)))
    assert np.array_equal(np.concatenate([p.is_anomaly for p in parts]), smoothed > threshold)
    assert state.steps == len(new) and len(state.tail) == WINDOW - 1


def test_a_stream_waits_for_a_full_window_and_rejects_bad_rows(windowed, series):
    rows = series[1].to_numpy()
    state, out = advance(windowed, StreamState(), rows[:5], 0.5, 1.0)
    assert out.score.size == 0 and state.steps == 5 and len(state.tail) == 5
    bad = rows[5:8].copy()
    bad[1, 2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        advance(windowed, state, bad, 0.5, 1.0)
    state, out = advance(windowed, state, rows[5:9], 0.5, 1.0)
    assert out.step.tolist() == [7, 8]


def test_a_stream_moves_to_another_model_keeping_its_buffer(windowed, series):
    rows = series[1].to_numpy()
    state, _ = advance(windowed, StreamState(), rows[:20], 0.9, 1.0)
    rebased = state.rebase(windowed)
    assert rebased.smoothed is None and np.array_equal(rebased.tail, state.tail) and rebased.steps == 20


def test_array_scores_are_indexed_by_position_of_each_windows_last_row(windowed, series):
    new = series[1].to_numpy()
    index = windowed.score_index(new[:100])
    assert list(index) == list(range(WINDOW - 1, 100)) and len(index) == len(windowed.score(new[:100]))
    split = windowed.score_index(Segments([new[:100], new[100:130]]))  # positions run on through the parts
    assert list(split) == [*range(WINDOW - 1, 100), *range(100 + WINDOW - 1, 130)]


def test_a_1d_series_is_one_feature_at_fit_and_after(series):
    one = series[0].iloc[:, 0].to_numpy()
    detector = VAEDetector(window=WINDOW, seed=0, epochs=2, hidden_dims=(8,), latent_dim=2, device="cpu")
    detector.fit(one)
    assert detector.n_channels_ == 1 and len(detector.score(one[:50])) == 50 - WINDOW + 1


def test_a_stream_refuses_rows_that_go_back_in_time(windowed, series):
    new = series[1]  # the pump's rows, indexed by their timestamps
    state, _ = advance(windowed, StreamState(), new.iloc[:20], 0.9, 1.0)
    assert state.last_time == new.index[19]
    with pytest.raises(InputError, match=r"before this series' last row at .* \(by their index\)"):
        advance(windowed, state, new.iloc[10:30], 0.9, 1.0)  # a resent stretch
    with pytest.raises(InputError, match="not in time order by their index"):
        advance(windowed, state, new.iloc[20:30].iloc[::-1], 0.9, 1.0)
    stamped = (
        new.iloc[20:30].reset_index(names="timestamp").assign(timestamp=lambda f: f.timestamp.astype(str))
    )
    state, out = advance(windowed, state.rebase(windowed), stamped, 0.9, 1.0)  # a timestamp column, as text
    assert state.last_time == new.index[29] and out.step.tolist() == list(range(20, 30))
    state, _ = advance(windowed, state, new.iloc[30:35].to_numpy(), 0.9, 1.0)  # no timestamps: taken as next
    assert state.last_time == new.index[29] and state.steps == 35
