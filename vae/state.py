"""`FittedState`: everything a detector learned, in one frozen object that persistence and export work on.

Example:
    >>> state = det.state()
    >>> state.threshold == det.threshold_
    True
    >>> VAEDetector.from_state(det.config, state).score(X_new)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from vae import calibration
from vae.errors import CalibrationError
from vae.model import VAE
from vae.prefilter import PrefilterReport
from vae.preprocessing import Preprocessor
from vae.scoring import Scorer, mix_terms
from vae.training import EpochStats


@dataclass(frozen=True, eq=False)
class FittedState:
    """A fitted detector's learned state. Recalibrating a detector replaces it; it never changes in place.

    Attributes:
        preprocessor: the column contract and scaler.
        vae: the trained network, on the CPU, in eval mode.
        scorer: raw rows to scores; its `alpha` and `threshold` are the ones scores, flags and exports use.
        calibration_terms: normalized (reconstruction, latent) terms of the calibration samples, (n, 2):
            held-out normal samples, or the fitted ones for a control limit.
        calibration_runs: lengths of the gap-free runs of those samples, in order.
        threshold_fpr: the false-positive rate the threshold was calibrated to.
        history: one `EpochStats` per training epoch.
        best_epoch: the epoch whose weights were kept.
        prefilter: what the outlier prefilter dropped, when it ran.
    """

    preprocessor: Preprocessor
    vae: VAE
    scorer: Scorer
    calibration_terms: np.ndarray
    calibration_runs: tuple[int, ...]
    threshold_fpr: float
    history: tuple[EpochStats, ...]
    best_epoch: int | None
    prefilter: PrefilterReport | None

    @property
    def alpha(self) -> float:
        """Weight of the reconstruction term in the score."""
        return float(self.scorer.alpha)

    @property
    def threshold(self) -> float:
        """Scores above this are flagged."""
        return float(self.scorer.threshold)

    @cached_property
    def calibration_scores(self) -> np.ndarray:
        """Scores of the calibration samples at this alpha, sorted ascending (float64)."""
        return np.sort(mixed_scores(self.calibration_terms, self.alpha, self.scorer.combine))


def mixed_scores(terms: np.ndarray, alpha: float, combine: str) -> np.ndarray:
    """Scores (float64) of normalized (reconstruction, latent) terms, (n, 2) -> (n,)."""
    t = torch.as_tensor(terms)
    return mix_terms(t[:, 0], t[:, 1], alpha, combine).double().numpy()


def calibrated_threshold(scorer: Scorer, terms: np.ndarray, alpha: float, fpr: float, method: str) -> float:
    """The threshold on scores at `alpha` that `method` (`ScoreConfig.threshold_method`) sets from `terms`.

    'conformal' and 'gaussian_tail' flag `fpr` of the calibration scores; 'control_limit' limits the raw
    reconstruction error (alpha 1) and returns that limit as a score.

    Raises:
        CalibrationError: the scores cannot resolve `fpr` (conformal), are empty or non-finite, or a
            control limit at another alpha.
    """
    if method == "control_limit":
        if alpha != 1:
            raise CalibrationError(f"a control limit needs alpha 1 (reconstruction alone), not {alpha}")
        errors = scorer.raw_reconstruction(torch.as_tensor(terms[:, 0])).double().numpy()
        limit = torch.tensor([calibration.control_limit(errors, fpr)], dtype=torch.float32)
        return float(scorer.normalize(limit, torch.zeros(1))[0][0])
    scores = mixed_scores(terms, alpha, scorer.combine)
    if method == "conformal":
        return calibration.conformal_threshold(scores, fpr)
    return calibration.gaussian_tail_threshold(scores, fpr)


def calibrate(scorer: Scorer, terms: np.ndarray, alpha: float, fpr: float, method: str) -> Scorer:
    """A copy of `scorer` weighing by `alpha`, its threshold flagging `fpr` of the calibration `terms`.

    Raises:
        CalibrationError: as `calibrated_threshold`; `scorer` is never changed.
    """
    threshold = calibrated_threshold(scorer, terms, alpha, fpr, method)
    calibrated = copy.deepcopy(scorer)
    calibrated.alpha.fill_(alpha)
    calibrated.threshold.fill_(threshold)
    return calibrated
