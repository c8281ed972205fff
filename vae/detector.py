"""`VAEDetector`: fit on normal rows, score, calibrate a threshold to a target FPR, predict, save and load.

Example:
    >>> det = VAEDetector(seed=0).fit(X_normal)
    >>> pred = det.predict(X_new)
    >>> pred.is_anomaly.mean()            # about det.config.target_fpr on normal data
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import torch

from vae.calibration import (
    calibration_drift,
    conformal_pvalues,
    conformal_threshold,
    realized_fpr_interval,
)
from vae.config import DetectorConfig
from vae.errors import ExchangeabilityWarning, InputError, NotFittedError
from vae.export import SUFFIX, ExportReport, export_state
from vae.imputation import impute_rows
from vae.mixing import auto_alpha, tune_alpha
from vae.model import VAE
from vae.persistence import load_state, save_state
from vae.prefilter import PrefilterReport, drop_outliers
from vae.preprocessing import Preprocessor, as_matrix, centered, drifting_channels
from vae.scoring import Scorer
from vae.state import FittedState, calibrate, mixed_scores
from vae.timeseries import ema
from vae.training import EpochStats, train_vae, validation_loss
from vae.windowing import (
    parts_of,
    require_time_order,
    time_axis,
    time_column,
    window_counts,
    windows_of,
)

_SCORE_CHUNK = 8192  # rows per scoring step: keeps activations in cache


@dataclass(frozen=True)
class Prediction:
    """Scores, flags, p-values and the threshold used, for n rows."""

    score: np.ndarray
    is_anomaly: np.ndarray
    threshold: float
    p_value: np.ndarray


def resolve_device(device: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else is passed to torch."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class VAEDetector:
    """Anomaly detector: a VAE trained on normal rows, hybrid scoring, conformal threshold.

    Args:
        config: a full `DetectorConfig`; or give flat options instead (`VAEDetector(latent_dim=4, seed=1)`).
        **options: any field of `DetectorConfig` or of its model/train/score sections.
    """

    def __init__(self, config: DetectorConfig | None = None, **options: Any) -> None:
        if config is not None and options:
            raise TypeError("pass either config or keyword options, not both")
        self.config = config if config is not None else DetectorConfig.from_flat(**options)
        self._state: FittedState | None = None

    @classmethod
    def from_state(cls, config: DetectorConfig, state: FittedState) -> Self:
        """A fitted detector of `config` with the learned `state` (as `state()` returns it), ready to use."""
        det = cls(config)
        det._state = state
        return det

    def state(self) -> FittedState:
        """Everything the detector learned, as one frozen object (replaced, never changed, on recalibration).

        Raises:
            NotFittedError: the detector is not fitted yet.
        """
        if self._state is None:
            raise NotFittedError("this VAEDetector is not fitted yet: call fit(X) or VAEDetector.load(path)")
        return self._state

    # ----------------------------------------------------------------- fit
    def fit(
        self,
        X: Any,
        X_val: Any | None = None,
        warm_start: VAEDetector | None = None,
        shadow_anomalies: Any | None = None,
        on_epoch: Callable[[EpochStats], None] | None = None,
    ) -> VAEDetector:
        """Train on normal rows X, then normalize the score terms and calibrate the threshold.

        Args:
            X: (n_samples, n_features) normal rows, array or DataFrame; a time-ordered series when
                `config.window` > 1, or `Segments` of one where rows were dropped.
            X_val: calibration rows (normal, held out): they set the threshold and nothing else. By
                default a seeded slice of X (its newest rows for window > 1): `val_fraction` of it,
                raised towards 2/target_fpr samples (up to half of X, or the 1/target_fpr - 1 that
                calibration needs). The training decisions (early stopping, score normalization, alpha)
                use a tuning slice of the remaining rows (`tune_fraction`), never these. A control limit
                (`threshold_method='control_limit'`) holds nothing out: by default its rows are X itself.
            warm_start: a fitted detector with the same features and architecture; training starts
                from its weights and keeps its preprocessing.
            shadow_anomalies: known anomalies used only to choose alpha (when alpha='auto').
            on_epoch: called with each epoch's `EpochStats` (progress display).

        Raises:
            InputError: unusable X or X_val, or warm_start incompatible with this config.
            TrainingDivergedError: the loss became NaN/inf.
        """
        cfg = self.config
        parts = parts_of(X)
        if cfg.window > 1:
            require_time_order(parts)
        columns = _column_names(parts[0])
        first = as_matrix(parts[0], columns=columns)
        check = lambda p: as_matrix(p, columns=columns, n_features=first.shape[1])  # noqa: E731
        rows = [first, *map(check, parts[1:])]
        if X_val is not None:
            train, hold = rows, [check(p) for p in parts_of(X_val)]
        elif cfg.score.threshold_method == "control_limit":
            train, hold = rows, rows  # a control limit comes from the fitted rows themselves
        else:
            train, hold = self.split_holdout(rows)
        chosen = self._centered_channels(train, warm_start)
        train, tune = self._slice(train, cfg.train.tune_fraction)
        X_train, X_tune, X_hold = (
            centered(windows_of(p, cfg.window), cfg.window, chosen) for p in (train, tune, hold)
        )
        if len(X_train) < cfg.train.min_rows:
            unit = "rows" if cfg.window == 1 else f"windows of {cfg.window} steps"
            raise InputError(f"too few {unit} to fit: {len(X_train)} for training, need {cfg.train.min_rows}")
        X_train, prefilter = drop_outliers(X_train, cfg.train.prefilter_fraction, cfg.seed)

        device = resolve_device(cfg.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            pre, vae = self._initial_model(X_train, columns, warm_start, chosen)
        vae.to(device)
        to_t = lambda a: torch.as_tensor(pre.standardize(a), device=device)  # noqa: E731
        # A warm start is already fitted: annealing KL from zero again would undo its latent structure.
        train_cfg = cfg.train if warm_start is None else cfg.train.model_copy(update={"kl_warmup_epochs": 0})
        result = train_vae(vae, to_t(X_train), to_t(X_tune), train_cfg, cfg.seed, on_epoch)

        scorer = Scorer(vae, pre, cfg.score)
        tuning = torch.stack(scorer.fit_normalization(torch.as_tensor(X_tune)), dim=1).numpy()
        if cfg.score.alpha != "auto":
            alpha = float(cfg.score.alpha)
        elif shadow_anomalies is not None:
            alpha = tune_alpha(tuning, _terms_of(pre, scorer, shadow_anomalies), cfg.score.combine)
        else:
            alpha = auto_alpha(tuning)
        terms = _sample_terms(scorer, X_hold)
        scorer = calibrate(scorer, terms, alpha, cfg.target_fpr, cfg.score.threshold_method)  # may raise
        self._state = FittedState(
            preprocessor=pre,
            vae=vae.cpu().eval(),
            scorer=scorer,
            calibration_terms=terms,
            calibration_runs=window_counts(hold, cfg.window),
            threshold_fpr=cfg.target_fpr,
            history=result.history,
            best_epoch=result.best_epoch,
            prefilter=prefilter,
        )
        self._warn_if_calibration_drifted()
        return self

    def _warn_if_calibration_drifted(self) -> None:
        """Warn when a time-ordered calibration window drifts within itself (see `calibration_drift_`)."""
        statistic, drifted = self.calibration_drift_
        if drifted:
            warnings.warn(
                f"the calibration window drifts within itself (KS {statistic:.2f} between its halves): "
                "new normal rows will not look like it, so the threshold's FPR range "
                "(fpr_interval) will not hold; calibrate on rows like the future, or use adaptive "
                "thresholds (vae.adaptive) on streams",
                ExchangeabilityWarning,
                stacklevel=3,
            )

    def split_holdout(self, parts: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Training and calibration rows: a seeded random slice, or the newest rows of a windowed series."""
        cfg = self.config
        n = sum(len(p) for p in parts)
        stable, least = math.ceil(2 / cfg.target_fpr) - 1, math.ceil(1 / cfg.target_fpr) - 1
        share = max(cfg.train.val_fraction, min(stable, max(n // 2, least)) / n)
        return self._slice(parts, share, math.ceil(cfg.train.min_rows / (1 - cfg.train.tune_fraction)) + 1)

    def _slice(
        self, parts: list[np.ndarray], share: float, keep: int | None = None
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The rest (at least `keep` rows, default `min_rows`) and a held-out `share` (one sample or more).

        Seeded random rows, or the newest rows of a windowed series: its windows overlap, and a random
        split would hold out copies of training steps.
        """
        cfg = self.config
        n = sum(len(p) for p in parts)
        n_out = max(cfg.window, min(math.ceil(share * n) + cfg.window - 1, n - (keep or cfg.train.min_rows)))
        if cfg.window > 1:
            return _cut(parts, n - n_out)
        X = parts[0] if len(parts) == 1 else np.concatenate(parts)
        order = np.random.default_rng(cfg.seed).permutation(n)
        return [X[np.sort(order[n_out:])]], [X[np.sort(order[:n_out])]]

    def _centered_channels(self, train: list[np.ndarray], warm_start: VAEDetector | None) -> tuple[int, ...]:
        """The channels the model sees centered per window: a warm start's, else those drifting in `train`.

        A warm start of other columns centers nothing here: `_initial_model` refuses it by name.
        """
        if warm_start is not None:
            source = warm_start.state().preprocessor
            return source.centered if source.n_channels == train[0].shape[1] else ()
        if self.config.drifting_channels == "levels":
            return ()
        return drifting_channels(np.concatenate(train))

    def _initial_model(
        self,
        X_train: np.ndarray,
        columns: tuple[str, ...] | None,
        warm_start: VAEDetector | None,
        centered: tuple[int, ...],
    ) -> tuple[Preprocessor, VAE]:
        m = self.config.model
        n_features = X_train.shape[1]
        hidden, latent = m.architecture(n_features)
        vae = VAE.of(self.config, n_features, hidden, latent)
        if warm_start is None:
            return Preprocessor.fit(X_train, columns, self.config.window, centered), vae
        src = warm_start.state()
        src_pre, src_vae = src.preprocessor, src.vae
        if src_pre.window != self.config.window:
            raise InputError(
                f"warm_start uses windows of {src_pre.window} step(s), this config {self.config.window}"
            )
        if src_pre.n_features != n_features or (columns and src_pre.columns and src_pre.columns != columns):
            raise InputError(
                f"warm_start was trained on {src_pre.columns or src_pre.n_features} feature(s), "
                f"X has {columns or n_features}"
            )
        source = (
            src_vae.kind,
            src_vae.hidden_dims,
            src_vae.latent_dim,
            warm_start.config.model.reconstruction,
        )
        if source != (m.encoder, hidden, latent, m.reconstruction):
            raise InputError(
                "warm_start has a different architecture (encoder, hidden_dims, latent_dim or reconstruction)"
            )
        vae.load_state_dict(src_vae.state_dict())
        return src_pre, vae

    # ------------------------------------------------------ fitted state
    @property
    def preprocessor_(self) -> Preprocessor:
        """The column contract and scaler."""
        return self.state().preprocessor

    @property
    def vae_(self) -> VAE:
        """The trained network (CPU, eval mode)."""
        return self.state().vae

    @property
    def history_(self) -> tuple[EpochStats, ...]:
        """One `EpochStats` per training epoch."""
        return self.state().history

    @property
    def best_epoch_(self) -> int | None:
        """The epoch whose weights were kept."""
        return self.state().best_epoch

    @property
    def prefilter_(self) -> PrefilterReport | None:
        """What the outlier prefilter dropped, when it ran."""
        return self.state().prefilter

    @property
    def calibration_terms_(self) -> np.ndarray:
        """Normalized (reconstruction, latent) terms of the calibration samples, (n, 2).

        Held-out normal samples; for a control limit, the fitted ones.
        """
        return self.state().calibration_terms

    @property
    def calibration_runs_(self) -> tuple[int, ...]:
        """Lengths of the gap-free runs of calibration samples, in order."""
        return self.state().calibration_runs

    @property
    def calibration_scores_(self) -> np.ndarray:
        """Scores of the calibration samples (`calibration_terms_`), sorted ascending."""
        return self.state().calibration_scores

    @property
    def calibration_drift_(self) -> tuple[float, bool]:
        """KS between the halves of the calibration scores in time order, and whether that is drift.

        Only a windowed detector calibrates on a time-ordered slice (its newest rows); a random slice of
        rows has no order to drift along, and reports (0.0, False).
        """
        if self.config.window == 1:
            return 0.0, False
        return calibration_drift(self.smoothed_calibration(0))

    @property
    def threshold_fpr_(self) -> float:
        """The false-positive rate the threshold was calibrated to."""
        return self.state().threshold_fpr

    # ------------------------------------------------------------- scoring
    def _run(self, X: Any, fn: Callable[[torch.Tensor], torch.Tensor], width: int) -> np.ndarray:
        return _apply(self.state().preprocessor.check(X), fn, width)

    def observations(self, X: Any) -> np.ndarray:
        """X's rows checked against the column contract, as raw float32 values (before any windowing)."""
        return self.state().preprocessor.observations(X)

    def score(self, X: Any) -> np.ndarray:
        """Anomaly scores, higher = more anomalous: one per row, or per full window when window > 1."""
        return self._run(X, self.state().scorer, 1)

    decision_function = score  # PyOD's name

    def _terms(self, X: Any) -> np.ndarray:
        state = self.state()
        return _terms_of(state.preprocessor, state.scorer, X)

    def score_components(self, X: Any) -> pd.DataFrame:
        """Per-row parts of the score: raw reconstruction and latent terms, their normalized forms, score."""
        scorer = self.state().scorer

        def parts(x: torch.Tensor) -> torch.Tensor:
            recon, latent = scorer.raw_components(x)
            r, z = scorer.normalize(recon, latent)
            return torch.stack([recon, latent, r, z, scorer.mix(r, z)], dim=1)

        cols = ["reconstruction", "latent", "reconstruction_norm", "latent_norm", "score"]
        return pd.DataFrame(self._run(X, parts, 5), columns=cols, index=self.score_index(X))

    def score_index(self, X: Any) -> pd.Index:
        """Which row each score belongs to (a window's last row): DataFrame labels, else positions in X.

        For `Segments`, positions count through the parts in order; no score spans two parts.
        """
        parts, skip = parts_of(X), self.config.window - 1
        if all(isinstance(p, pd.DataFrame) for p in parts):
            labels = [_labels(p)[skip:] for p in parts if len(p) > skip]
            return labels[0].append(labels[1:]) if labels else pd.Index([])
        starts = np.cumsum([0, *(len(p) for p in parts)])
        return pd.Index(np.concatenate([np.arange(a + skip, b) for a, b in itertools.pairwise(starts)]))

    def holdout_loss(self, X: Any) -> float:
        """Mean negative ELBO per row of X (z at the posterior mean, full beta), in raw-data units.

        With the Gaussian likelihood the scaler's log-Jacobian is added, so that detectors with different
        scalers (a cold start against a warm start) are compared on the same footing.
        """
        pre, vae = self.preprocessor_, self.vae_
        loss, _ = validation_loss(vae, torch.as_tensor(pre.transform(X)), self.config.train.beta)
        if self.config.model.reconstruction == "gaussian_nll":
            loss += float(np.log(pre.scale.astype(np.float64)).sum())
        return loss

    def feature_contributions(self, X: Any) -> pd.DataFrame:
        """Each feature's share of the reconstruction term per score (n_scores, n_columns): where to look.

        Entry (i, j) is column j's weighted squared reconstruction error, summed over the window's steps
        for window > 1; a row's entries sum to its raw reconstruction term.
        """
        pre, scorer = self.preprocessor_, self.state().scorer

        def parts(x: torch.Tensor) -> torch.Tensor:
            diff = x - scorer.decode(scorer.encode(x)[0])
            return (diff * diff * scorer.recon_weight).view(len(x), pre.window, pre.n_channels).sum(dim=1)

        return pd.DataFrame(
            self._run(X, parts, pre.n_channels), columns=self._channel_names(), index=self.score_index(X)
        )

    def reconstruct(self, X: Any) -> pd.DataFrame:
        """Each score's row as the model rebuilds it (raw units; a window's last step), for inspection.

        A centered channel (`drifting_channels`) is rebuilt as the model sees it: less its window's mean.
        """
        pre, scorer = self.preprocessor_, self.state().scorer

        def last_step(x: torch.Tensor) -> torch.Tensor:
            return scorer.decode(scorer.encode(x)[0])[:, -pre.n_channels :]

        return pd.DataFrame(
            self._run(X, last_step, pre.n_channels), columns=self._channel_names(), index=self.score_index(X)
        )

    def latent_means(self, X: Any) -> np.ndarray:
        """Posterior means of each score's row or window, (n_scores, latent_dim): where the model puts it."""
        scorer = self.state().scorer
        return self._run(X, lambda x: scorer.encode(x)[0], scorer.latent_dim).reshape(-1, scorer.latent_dim)

    def impute(self, X: Any, iterations: int = 20) -> pd.DataFrame | np.ndarray:
        """X with its missing values filled through the decoder (rows on their own; window 1 only).

        Missing entries start at the training means; each iteration encodes and decodes the rows and
        takes the reconstruction for the missing entries only (observed values are never changed).
        """
        pre = self.preprocessor_
        if pre.window != 1:
            raise InputError("impute fills rows on their own: it needs a detector with window=1")
        values = as_matrix(X, columns=pre.columns, n_features=pre.n_channels, allow_nan=True)
        filled = impute_rows(self.state().scorer, values, pre.mean, iterations)
        if isinstance(X, pd.DataFrame):
            return X.assign(**dict(zip(self._channel_names(), filled.T, strict=True)))
        return filled

    def _channel_names(self) -> list[str]:
        pre = self.preprocessor_
        return list(pre.columns or (f"x{i}" for i in range(pre.n_channels)))

    # ---------------------------------------------------------- thresholds
    @property
    def n_channels_(self) -> int:
        """Columns of one observation (a row of the input)."""
        return self.state().preprocessor.n_channels

    @property
    def alpha_(self) -> float:
        """Weight of the reconstruction term in the score."""
        return self.state().alpha

    @property
    def threshold_(self) -> float:
        """Scores above this are flagged."""
        return self.state().threshold

    def set_alpha(self, alpha: float) -> None:
        """Weigh the reconstruction term by `alpha` and recalibrate the threshold on the calibration rows."""
        if not 0.0 <= alpha <= 1.0:
            raise InputError(f"alpha must be in [0, 1], got {alpha}")
        state = self.state()
        self._calibrate(state.calibration_terms, alpha, state.threshold_fpr, state.calibration_runs)

    def _calibrate(self, terms: np.ndarray, alpha: float, fpr: float, runs: tuple[int, ...]) -> float:
        """Set alpha and the threshold from calibration terms, in `runs` of consecutive samples; returns it.

        On error, nothing changes.
        """
        state = self.state()
        scorer = calibrate(state.scorer, terms, alpha, fpr, self.config.score.threshold_method)
        self._state = replace(
            state, scorer=scorer, calibration_terms=terms, calibration_runs=runs, threshold_fpr=fpr
        )
        return self._state.threshold

    def fpr_interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Where the false-positive rate of `threshold_` on new normal rows lies, with this confidence.

        The threshold is an order statistic of n calibration scores, so its realized FPR is random
        (`realized_fpr_law`): with 200 calibration rows a 1% target lands anywhere in about 0.1-3%.
        For a Gaussian-tail threshold it is the interval of the largest calibration score not above the
        threshold, which bounds its FPR from above (from below if the threshold is under every score).
        """
        state = self.state()
        n = state.calibration_scores.size
        rank = int(np.searchsorted(state.calibration_scores, state.threshold, side="right"))  # not flagged
        return realized_fpr_interval(n, min(max(rank, 1), n), confidence)

    def smoothed_threshold(self, beta: float) -> float:
        """Threshold for `ema(scores, beta)` streams, at the same target FPR.

        Calibrated on `smoothed_calibration(beta)`, so it suits detectors calibrated on a time-ordered
        series (window > 1). beta = 0 gives `threshold_`.
        """
        state = self.state()
        if not beta:
            return state.threshold
        return conformal_threshold(self.smoothed_calibration(beta), state.threshold_fpr)

    def smoothed_calibration(self, beta: float) -> np.ndarray:
        """The calibration scores smoothed as a stream is: their EMA in order, restarted at each gap."""
        state = self.state()
        scores = mixed_scores(state.calibration_terms, state.alpha, state.scorer.combine)
        if not beta:
            return scores
        runs = np.split(scores, np.cumsum(state.calibration_runs)[:-1])
        return np.concatenate([ema(run, beta) for run in runs])

    def infer_threshold(self, X_normal: Any, fpr: float | None = None) -> float:
        """Recalibrate the threshold (and p-values) on other normal rows, without retraining; returns it.

        Raises:
            CalibrationError: fpr < 1/(n+1) for the conformal method.
        """
        fpr = self.config.target_fpr if fpr is None else fpr
        runs = window_counts(parts_of(X_normal), self.config.window)
        return self._calibrate(self._terms(X_normal), self.alpha_, fpr, runs)

    def tune_alpha(self, X_anomalies: Any) -> float:
        """Choose alpha on known anomalies against the held-out normals (never trains on them); returns it."""
        alpha = tune_alpha(self.calibration_terms_, self._terms(X_anomalies), self.config.score.combine)
        self.set_alpha(alpha)
        return alpha

    def predict(self, X: Any) -> Prediction:
        """Scores, flags (score > threshold), conformal p-values and the threshold."""
        state = self.state()
        scores = self.score(X)
        threshold = state.threshold
        return Prediction(
            scores, scores > threshold, threshold, conformal_pvalues(state.calibration_scores, scores)
        )

    def predict_frame(self, X: Any) -> pd.DataFrame:
        """`predict` as a DataFrame: score, is_anomaly and p_value, indexed like `score_index(X)`."""
        prediction = self.predict(X)
        return pd.DataFrame(
            {"score": prediction.score, "is_anomaly": prediction.is_anomaly, "p_value": prediction.p_value},
            index=self.score_index(X),
        )

    def export(self, path: str | Path, fmt: str, X_check: Any, tolerance: float = 1e-5) -> ExportReport:
        """Write an ONNX or TorchScript artifact (score and flag from raw rows) after a parity check.

        Raises:
            ExportError: export failed or the artifact scores differently (nothing is written).
        """
        if fmt not in SUFFIX:
            raise InputError(f"unknown export format {fmt!r}; choose one of {sorted(SUFFIX)}")
        return export_state(self.state(), path, fmt, X_check, tolerance)  # type: ignore[arg-type]

    # --------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        """Write the detector to a folder (config JSON + safetensors; no pickle). Returns the folder."""
        return save_state(self.config, self.state(), Path(path))

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load a detector saved by `save`, on the CPU whatever device trained it, with its saved threshold.

        Raises:
            ModelFileError: missing, corrupt or incompatible files, or a saved threshold that this version's
                calibration would compute differently from the saved calibration terms.
        """
        return cls.from_state(*load_state(Path(path)))


def _apply(x_np: np.ndarray, fn: Callable[[torch.Tensor], torch.Tensor], width: int) -> np.ndarray:
    """Run `fn` over checked rows in cache-sized chunks, without autograd."""
    x = torch.from_numpy(x_np)
    out = torch.empty((x.shape[0], width) if width > 1 else (x.shape[0],))
    with torch.inference_mode():
        for start in range(0, x.shape[0], _SCORE_CHUNK):
            out[start : start + _SCORE_CHUNK] = fn(x[start : start + _SCORE_CHUNK])
    return out.numpy()


def _terms_of(pre: Preprocessor, scorer: Scorer, X: Any) -> np.ndarray:
    """Normalized (reconstruction, latent) terms of raw rows, (n_samples, 2)."""
    return _sample_terms(scorer, pre.check(X))


def _sample_terms(scorer: Scorer, samples: np.ndarray) -> np.ndarray:
    """Normalized (reconstruction, latent) terms of checked samples (rows or flat windows), (n, 2)."""
    return _apply(samples, lambda x: torch.stack(scorer.normalize(*scorer.raw_components(x)), dim=1), 2)


def _cut(parts: list[np.ndarray], at: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The parts before and after row `at` of their concatenation."""
    before, after, start = [], [], 0
    for part in parts:
        end = start + len(part)
        if end <= at:
            before.append(part)
        elif start >= at:
            after.append(part)
        else:
            before.append(part[: at - start])
            after.append(part[at - start :])
        start = end
    return before, after


def _labels(frame: pd.DataFrame) -> pd.Index:
    """What names a frame's rows: its timestamps when it has a timestamp column, else its index."""
    times = time_axis(frame)
    return frame.index if times is None else times


def _column_names(X: Any) -> tuple[str, ...] | None:
    """A frame's feature columns: all but its timestamp column (the time axis)."""
    if not isinstance(X, pd.DataFrame):
        return None
    time = time_column(X)
    return tuple(str(c) for c in X.columns if str(c) != time)
