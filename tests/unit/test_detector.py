import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from vae import ModelFileError, NotFittedError, TrainingDivergedError, VAEDetector, calibration
from vae.mixing import ALPHA_GRID, tune_alpha
from vae.state import mixed_scores
from vae.sweep import elbow_point, latent_dim_sweep


@pytest.fixture
def fitted(normal_rows, fast_options):
    return VAEDetector(**fast_options).fit(normal_rows)


def test_scores_and_prediction_shapes(fitted, normal_rows):
    scores = fitted.score(normal_rows[:17])
    assert scores.shape == (17,) and scores.dtype == np.float32
    np.testing.assert_array_equal(fitted.decision_function(normal_rows[:17]), scores)
    pred = fitted.predict(normal_rows[:17])
    np.testing.assert_array_equal(pred.is_anomaly, pred.score > pred.threshold)
    assert ((pred.p_value > 0) & (pred.p_value <= 1)).all()


def test_outliers_score_higher_than_normal_rows(fitted, normal_rows):
    shifted = normal_rows[:100] + 6.0
    assert np.median(fitted.score(shifted)) > np.quantile(fitted.score(normal_rows), 0.99)


def test_score_components_add_up(fitted, normal_rows):
    parts = fitted.score_components(pd.DataFrame(normal_rows[:9], index=range(100, 109)))
    assert list(parts.columns) == ["reconstruction", "latent", "reconstruction_norm", "latent_norm", "score"]
    assert list(parts.index) == list(range(100, 109))
    a = fitted.alpha_
    np.testing.assert_allclose(
        parts.score, a * parts.reconstruction_norm + (1 - a) * parts.latent_norm, rtol=1e-5
    )


def test_using_an_unfitted_detector_raises():
    with pytest.raises(NotFittedError, match="not fitted"):
        VAEDetector().score(np.zeros((2, 3)))


def test_history_records_each_epoch(fitted):
    assert [h.epoch for h in fitted.history_] == list(range(len(fitted.history_)))
    assert fitted.history_[0].beta == 0.0 and fitted.history_[-1].beta == 1.0
    assert all(0 <= h.active_units <= 2 for h in fitted.history_)
    assert fitted.history_[-1].loss < fitted.history_[0].loss


def test_save_load_gives_identical_scores(fitted, normal_rows, tmp_path):
    fitted.save(tmp_path / "m")
    loaded = VAEDetector.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.score(normal_rows), fitted.score(normal_rows))
    assert loaded.threshold_ == fitted.threshold_ and loaded.history_ == fitted.history_
    assert loaded.fpr_interval() == fitted.fpr_interval()
    np.testing.assert_array_equal(loaded.predict(normal_rows).p_value, fitted.predict(normal_rows).p_value)


def test_saved_files_need_no_pickle(fitted, tmp_path):
    folder = fitted.save(tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == ["detector.json", "weights.safetensors"]
    assert json.loads((folder / "detector.json").read_text())["format_version"] == 1


def test_corrupt_or_missing_files_raise_a_clear_error(fitted, tmp_path):
    folder = fitted.save(tmp_path / "m")
    (folder / "weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="corrupt"):
        VAEDetector.load(folder)
    with pytest.raises(ModelFileError, match="missing"):
        VAEDetector.load(tmp_path / "nowhere")


def test_infer_threshold_recalibrates_without_retraining(fitted, normal_rows):
    weights = fitted.vae_.state_dict()["mu.weight"].clone()
    t = fitted.infer_threshold(normal_rows, fpr=0.2)
    assert t == fitted.threshold_ == pytest.approx(np.quantile(fitted.score(normal_rows), 0.8), rel=0.05)
    assert (fitted.predict(normal_rows).is_anomaly.mean()) == pytest.approx(0.2, abs=0.01)
    assert torch.equal(weights, fitted.vae_.state_dict()["mu.weight"])


def test_warm_start_begins_from_the_given_weights(normal_rows, fast_options):
    base = VAEDetector(**{**fast_options, "epochs": 40}).fit(normal_rows)
    cold = VAEDetector(**{**fast_options, "epochs": 1, "kl_warmup_epochs": 0}).fit(normal_rows)
    warm = VAEDetector(**{**fast_options, "epochs": 1, "kl_warmup_epochs": 0, "lr": 1e-12}).fit(
        normal_rows, warm_start=base
    )
    for name, tensor in base.vae_.state_dict().items():
        torch.testing.assert_close(warm.vae_.state_dict()[name], tensor)
    assert warm.history_[0].val_loss < cold.history_[0].val_loss
    assert warm.preprocessor_ is base.preprocessor_


def test_warm_start_needs_the_same_architecture(normal_rows, fast_options, fitted):
    from vae import InputError

    with pytest.raises(InputError, match="different architecture"):
        VAEDetector(**{**fast_options, "latent_dim": 3}).fit(normal_rows, warm_start=fitted)


def test_diverging_loss_raises_and_yields_no_detector(normal_rows):
    det = VAEDetector(lr=1e6, grad_clip=None, epochs=30, seed=0, device="cpu")
    with pytest.raises(TrainingDivergedError, match="became"):
        det.fit(normal_rows * 1e18)
    with pytest.raises(NotFittedError):
        det.score(normal_rows)


@pytest.mark.parametrize(("seen_by", "toward"), [(0, 1.0), (1, 0.0)])
def test_alpha_moves_to_the_term_that_sees_the_anomalies(seen_by, toward):
    """Anomalies that only one term separates pull alpha toward that term's end (1: reconstruction)."""
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(400, 2))
    anomalies = rng.normal(size=(100, 2))
    anomalies[:, seen_by] += 3.0  # the other term cannot tell them from normal rows
    assert abs(tune_alpha(normal, anomalies, "sum") - toward) <= 0.2


def test_shadow_anomalies_tune_alpha_and_recalibrate(normal_rows, fast_options):
    det = VAEDetector(**fast_options).fit(normal_rows)
    auto = det.alpha_
    shadow = normal_rows[:50] * 4
    alpha = det.tune_alpha(shadow)
    assert alpha in ALPHA_GRID and det.alpha_ == alpha
    # the threshold was recalibrated for the new mix, at the same target
    scores = mixed_scores(det.calibration_terms_, alpha, det.config.score.combine)
    assert det.threshold_ == pytest.approx(calibration.conformal_threshold(scores, det.threshold_fpr_))
    # and the tuned mix separates the shadow set at least as well as the label-free one did
    separation = {}
    for a in (auto, alpha):
        det.set_alpha(a)
        s_normal, s_shadow = det.score(normal_rows[-100:]), det.score(shadow)
        separation[a] = (s_shadow[:, None] > s_normal[None, :]).mean()
    assert separation[alpha] >= separation[auto]


def test_prefilter_drops_and_reports(normal_rows, fast_options):
    det = VAEDetector(**fast_options, prefilter_fraction=0.05).fit(normal_rows)
    assert det.prefilter_.n_dropped == round(0.05 * det.prefilter_.n_seen) > 0


def test_gaussian_nll_learns_feature_variances(normal_rows, fast_options):
    det = VAEDetector(**fast_options, reconstruction="gaussian_nll").fit(normal_rows)
    assert det.vae_.log_sigma2.abs().sum() > 0


def test_elbow_of_a_bent_curve():
    assert elbow_point([0, 1, 2, 3, 4], [10, 3, 2.5, 2.2, 2.0]) == 1


def test_latent_dim_sweep_returns_a_curve(normal_rows, fast_options):
    options = {k: v for k, v in fast_options.items() if k != "latent_dim"}
    result = latent_dim_sweep(normal_rows, dims=(1, 2, 4), **options)
    assert result.dims == (1, 2, 4) and len(result.val_loss) == 3 and result.elbow in result.dims


def test_calibrated_detector_hits_the_target_fpr_on_fresh_normal_data(fast_options):
    rng = np.random.default_rng(5)
    mixing = rng.normal(size=(3, 6))

    def draw(n):
        return (rng.normal(size=(n, 3)) @ mixing + 0.2 * rng.normal(size=(n, 6))).astype(np.float32)

    det = VAEDetector(**{**fast_options, "target_fpr": 0.05}).fit(draw(4000))
    realized = det.predict(draw(20_000)).is_anomaly.mean()
    assert 0.03 < realized < 0.07
    low, high = det.fpr_interval(0.99)
    assert low < realized < high  # the interval predicts where the realized FPR lands


def test_fpr_interval_follows_recalibration(fitted, normal_rows):
    low, high = fitted.fpr_interval()
    assert low < fitted.config.target_fpr < high
    fitted.infer_threshold(normal_rows, fpr=0.2)
    low, high = fitted.fpr_interval()
    assert 0.15 < low < 0.2 < high < 0.25


def test_auto_alpha_weighs_the_long_tailed_term_down():
    from vae.mixing import auto_alpha

    rng = np.random.default_rng(0)
    terms = np.c_[np.abs(rng.normal(size=5000)), 10 * np.abs(rng.normal(size=5000))]
    assert auto_alpha(terms) == pytest.approx(10 / 11, abs=0.02)
    assert auto_alpha(-np.abs(terms)) == 0.5


@pytest.mark.gpu
def test_gpu_trained_detector_loads_and_scores_on_cpu(normal_rows, fast_options, tmp_path):
    det = VAEDetector(**{**fast_options, "device": "cuda"}).fit(normal_rows)
    det.save(tmp_path / "m")
    loaded = VAEDetector.load(tmp_path / "m")
    assert next(loaded.vae_.parameters()).device.type == "cpu"
    np.testing.assert_allclose(loaded.score(normal_rows), det.score(normal_rows), rtol=1e-6)


def test_unreachable_fpr_fails_the_fit_and_keeps_no_detector(normal_rows, fast_options):
    from vae import CalibrationError

    det = VAEDetector(**{**fast_options, "target_fpr": 0.001})
    with pytest.raises(CalibrationError, match="needs at least 999 held-out normal rows"):
        det.fit(normal_rows)
    with pytest.raises(NotFittedError):
        det.predict(normal_rows)


def test_the_fitted_state_is_one_frozen_object_a_detector_is_rebuilt_from(fitted, normal_rows):
    with pytest.raises(NotFittedError, match="not fitted"):
        VAEDetector().state()
    state = fitted.state()
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.threshold_fpr = 0.5
    rebuilt = VAEDetector.from_state(fitted.config, state)
    np.testing.assert_array_equal(rebuilt.score(normal_rows), fitted.score(normal_rows))
    assert rebuilt.threshold_ == state.threshold == fitted.threshold_
    fitted.infer_threshold(normal_rows, fpr=0.2)  # recalibrating replaces the state, never changes it
    assert fitted.state() is not state and fitted.threshold_ != state.threshold == rebuilt.threshold_
    assert rebuilt.threshold_fpr_ == fitted.config.target_fpr and fitted.threshold_fpr_ == 0.2


def test_the_loaded_threshold_is_the_saved_value_not_a_recomputation(fitted, tmp_path):
    folder = fitted.save(tmp_path / "m")
    meta = json.loads((folder / "detector.json").read_text())
    assert meta["threshold"] == fitted.threshold_ == VAEDetector.load(folder).threshold_
    # one float32 step away: within the check's tolerance, and the loaded threshold is exactly this value
    meta["threshold"] = float(np.nextafter(np.float32(fitted.threshold_), np.float32(np.inf)))
    (folder / "detector.json").write_text(json.dumps(meta))
    loaded = VAEDetector.load(folder)
    assert loaded.threshold_ == meta["threshold"] != fitted.threshold_
    assert loaded.predict(np.zeros((1, 5), np.float32)).threshold == meta["threshold"]


@pytest.mark.parametrize(
    "changed_rule",
    [
        lambda scores, fpr: float(np.quantile(scores, 1 - fpr)),  # interpolated instead of an order statistic
        lambda scores, fpr: float(np.sort(scores)[math.ceil((len(scores) + 1) * (1 - fpr)) - 1]) * (1 + 1e-5),
    ],
    ids=["interpolated-quantile", "shifted-by-1e-5"],
)
def test_a_threshold_this_versions_calibration_would_move_is_refused(
    fitted, tmp_path, monkeypatch, changed_rule
):
    folder = fitted.save(tmp_path / "m")
    saved = fitted.threshold_
    monkeypatch.setattr(calibration, "conformal_threshold", changed_rule)
    with pytest.raises(ModelFileError, match="refusing to load a threshold that would move silently") as info:
        VAEDetector.load(folder)
    message = str(info.value)
    assert "\n" not in message and f"threshold {saved:.9g} recomputed as " in message
    assert f"recomputed as {saved:.9g}" not in message


def test_files_saved_before_the_threshold_was_kept_recompute_it(fitted, tmp_path, monkeypatch):
    folder = fitted.save(tmp_path / "m")
    meta = json.loads((folder / "detector.json").read_text())
    del meta["threshold"]
    (folder / "detector.json").write_text(json.dumps(meta))
    assert VAEDetector.load(folder).threshold_ == fitted.threshold_
    monkeypatch.setattr(calibration, "conformal_threshold", lambda scores, fpr: float(np.max(scores)))
    assert VAEDetector.load(folder).threshold_ == pytest.approx(np.max(fitted.calibration_scores_), rel=1e-6)


def test_calibration_rows_set_the_threshold_and_nothing_else(normal_rows, fast_options):
    train, calibration = normal_rows[:400], normal_rows[400:]
    shifted = calibration * 1.5 + 0.5  # calibration rows that look nothing like the training rows
    a = VAEDetector(**fast_options).fit(train, X_val=calibration)
    b = VAEDetector(**fast_options).fit(train, X_val=shifted)
    for name, tensor in a.vae_.state_dict().items():  # early stopping chose the same epoch's weights
        torch.testing.assert_close(b.vae_.state_dict()[name], tensor)
    for name in ("center", "spread", "latent_center", "alpha"):  # normalization and alpha alike
        torch.testing.assert_close(getattr(b.state().scorer, name), getattr(a.state().scorer, name))
    assert b.threshold_ > a.threshold_
    np.testing.assert_allclose(np.sort(a.score(calibration)), a.calibration_scores_, rtol=1e-5)
