"""The detector on a real dataset shipped in data/: a broken scorer or calibration would miss these floors."""

import numpy as np
import pytest

from vae import VAEDetector
from vae.evaluation import evaluate_scores, semi_supervised_split

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cardio_run(cardio):
    X_train, X_test, y_test = semi_supervised_split(cardio.X, cardio.y, seed=0)
    det = VAEDetector(seed=0, device="cpu").fit(X_train)
    return det, X_test, y_test


def test_hybrid_score_ranks_anomalies_well(cardio_run):
    det, X_test, y_test = cardio_run
    pred = det.predict(X_test)
    report = evaluate_scores(pred.score, pred.is_anomaly, y_test)
    # published semi-supervised VAE on cardio: 0.966 (DTE); reconstruction alone here is about 0.85
    assert report.auroc > 0.90
    assert report.auprc > 0.5


def test_hybrid_beats_each_term_alone(cardio_run):
    det, X_test, y_test = cardio_run
    parts = det.score_components(X_test)
    from sklearn.metrics import roc_auc_score

    hybrid = roc_auc_score(y_test, parts.score)
    assert hybrid >= roc_auc_score(y_test, parts.reconstruction) - 0.005
    assert hybrid >= roc_auc_score(y_test, parts.latent) - 0.05


def test_calibrated_fpr_on_unseen_normal_rows(cardio_run):
    det, X_test, y_test = cardio_run
    flags = det.predict(X_test[y_test == 0]).is_anomaly
    # target 1% on 828 unseen normal rows (6 flagged now); the realized FPR of a threshold calibrated on
    # 199 rows lies in the detector's own 99% interval, about 0.05%-3.7%: a threshold above every normal
    # score (nothing flagged) fails the lower bound
    low, _ = det.fpr_interval(0.99)
    assert flags.sum() >= 1 and low <= flags.mean() <= 0.03
    assert np.isfinite(det.threshold_)
