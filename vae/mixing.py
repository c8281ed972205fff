"""Choosing alpha, the weight of the reconstruction term: label-free by default, or on a shadow set.

Example:
    >>> alpha = tune_alpha(normal_terms, anomaly_terms, combine="sum")
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from vae.scoring import mix_terms

ALPHA_GRID = np.round(np.linspace(0.0, 1.0, 21), 2)


def auto_alpha(normal_terms: np.ndarray, quantile: float = 0.99) -> float:
    """Label-free alpha: weigh each term inversely to how far its held-out normal values reach.

    A term whose normal rows already reach high values (a long tail) would raise false alarms and
    drown the other term, so each term's weight is 1 / q, with q its `quantile` on held-out normal rows:
    alpha = q_L / (q_R + q_L). Both terms then contribute equally at the edge of normal behaviour.

    Args:
        normal_terms: (n_val, 2) normalized reconstruction and latent terms of held-out normal rows.
        quantile: where "the edge of normal behaviour" is taken.
    """
    q_r, q_l = np.quantile(normal_terms, quantile, axis=0)
    if q_r <= 0 or q_l <= 0:  # untransformed terms with a non-positive tail: no basis to reweigh
        return 0.5
    return float(q_l / (q_r + q_l))


def tune_alpha(normal_terms: np.ndarray, anomaly_terms: np.ndarray, combine: str) -> float:
    """The alpha on a grid that best separates known anomalies from held-out normals (AUROC).

    Ties go to the alpha closest to 0.5, so a shadow set that cannot tell the terms apart changes little.
    """
    terms = torch.as_tensor(np.concatenate([normal_terms, anomaly_terms]))
    labels = np.r_[np.zeros(len(normal_terms)), np.ones(len(anomaly_terms))]
    best, best_auc = 0.5, -np.inf
    for alpha in sorted(ALPHA_GRID, key=lambda a: abs(a - 0.5)):
        auc = roc_auc_score(labels, mix_terms(terms[:, 0], terms[:, 1], float(alpha), combine).numpy())
        if auc > best_auc + 1e-9:
            best, best_auc = float(alpha), auc
    return best
