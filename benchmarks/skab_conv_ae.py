"""SKAB's Conv-AE, rerun: a PyTorch port of its code, for the time-series benchmark (issue 18).

SKAB publishes Conv-AE at the top of its outlier-detection leaderboard (F1 0.78, FAR 13.55%, MAR 28.02%).
This ports what produced that row (waico/SKAB `core/Conv_AE.py` and `notebooks/Conv_AE.ipynb`), so the
row can be checked on the same split as ours, in the same run:
- per file, a scaler and a model fitted on the first 400 rows, as windows of 60 steps;
- the Keras model: Conv1D(32, 7, stride 2, relu), Dropout 0.2, Conv1D(16, 7, stride 2, relu),
  Conv1DTranspose(16, 7, stride 2, relu), Dropout 0.2, Conv1DTranspose(32, 7, stride 2, relu),
  Conv1DTranspose(1, 7); its one output channel is broadcast against every input channel (in the loss
  and in the residual), as Keras does with SKAB's 8 channels;
- Adam 1e-3 on the mean squared error, batches of 32, at most 100 epochs, the last 10% of the windows
  held out for early stopping (patience 5, the last epoch's weights kept);
- a window's residual: the sum over channels of the mean absolute error over its steps; the limit (UCL):
  4/3 of the 99.9% quantile of the training windows' residuals (`vae.calibration.control_limit`, the
  limit the detector sets with `threshold_method="control_limit"`);
- SKAB's rule from windows to rows: row i is an anomaly when every window that starts in the N - 1 rows
  up to i (i - N + 1 ... i - 1) is above the limit; the first N - 1 rows of a file, and its last rows
  past the last full set of such windows, are never flagged.
SKAB's rule never flags a file's last 2N - 2 rows (its loop stops where the last full set of windows
does): `covering_scores` is another rule for comparison, not SKAB's code: a row is flagged when every
window that covers it is above the limit, and only its last N - 1 rows (whose windows run past the end)
are left undecided.
`per_channel=True` is a variant, not SKAB's code: one output channel per input channel (what the broadcast
most likely meant), everything else the same.
Keras' weight initialisation and "same" padding (2 left, 3 right at stride 2) differ from torch's
defaults here (3 and 3); nothing else is meant to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.preprocessing import StandardScaler
from torch import nn

from vae.calibration import control_limit
from vae.timeseries import to_time_steps

STEPS, QUANTILE = 60, 0.999
EPOCHS, BATCH, PATIENCE, VALIDATION = 100, 32, 5, 0.1


@dataclass(frozen=True)
class ConvAEResult:
    """Per row of the file: SKAB's 0/1 prediction and the score it compares with the limit."""

    flags: np.ndarray
    score: np.ndarray  # the lowest residual of the windows the rule looks at (-inf: never flagged)
    covering: np.ndarray  # the flags of the rule that looks at every window covering a row
    limit: float
    floor: float  # the lowest training residual


def _model(channels: int, outputs: int) -> nn.Module:
    def up(into: int, out: int) -> nn.ConvTranspose1d:
        return nn.ConvTranspose1d(into, out, 7, stride=2, padding=3, output_padding=1)

    return nn.Sequential(
        nn.Conv1d(channels, 32, 7, stride=2, padding=3),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Conv1d(32, 16, 7, stride=2, padding=3),
        nn.ReLU(),
        up(16, 16),
        nn.ReLU(),
        nn.Dropout(0.2),
        up(16, 32),
        nn.ReLU(),
        nn.ConvTranspose1d(32, outputs, 7, padding=3),
    )


def _windows(values: np.ndarray) -> torch.Tensor:
    """(windows, channels, steps) float32: every window of STEPS consecutive rows."""
    view = np.lib.stride_tricks.sliding_window_view(values.astype(np.float32), STEPS, axis=0)
    return torch.from_numpy(np.ascontiguousarray(view))


def _fit(x: torch.Tensor, seed: int, per_channel: bool) -> nn.Module:
    torch.manual_seed(seed)
    model = _model(x.shape[1], x.shape[1] if per_channel else 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    cut = len(x) - int(np.ceil(len(x) * VALIDATION))  # Keras holds out the last part, unshuffled
    fit, held = x[:cut], x[cut:]
    best, waited = np.inf, 0
    for _ in range(EPOCHS):
        model.train()
        for batch in torch.randperm(len(fit)).split(BATCH):
            optimizer.zero_grad()
            loss = ((model(fit[batch]) - fit[batch]) ** 2).mean()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val = float(((model(held) - held) ** 2).mean())
        if val < best:
            best, waited = val, 0
        else:
            waited += 1
            if waited >= PATIENCE:
                break
    return model


def _residuals(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return (x - model(x)).abs().mean(dim=2).sum(dim=1).numpy().astype(np.float64)


def conv_ae(
    train: pd.DataFrame, whole: pd.DataFrame, seed: int = 0, per_channel: bool = False
) -> ConvAEResult:
    """Fit on `train` (a file's first rows) and predict every row of `whole` (the file), as SKAB does."""
    scaler = StandardScaler().fit(train)
    trained = _windows(scaler.transform(train))
    model = _fit(trained, seed, per_channel)
    limit_from = _residuals(model, trained)
    upper = control_limit(limit_from, 1 - QUANTILE)  # pandas' and numpy's quantiles agree
    residuals = _residuals(model, _windows(scaler.transform(whole)))
    score = row_scores(residuals)
    return ConvAEResult(
        score > upper, score, covering_scores(residuals) > upper, upper, float(limit_from.min())
    )


def row_scores(residuals: np.ndarray) -> np.ndarray:
    """SKAB's rule from windows to rows, as scores (a row is flagged when its score is above the limit).

    Row i gets the lowest residual of the windows starting in rows i - STEPS + 1 ... i - 1
    (`residuals[k]`: the window starting at row k); -inf where the rule never flags (the first STEPS - 1
    rows, and the rows past the last full set of such windows).
    """
    score = np.full(len(residuals) + STEPS - 1, -np.inf)
    for row in range(STEPS - 1, len(residuals) - STEPS + 1):
        score[row] = residuals[row - STEPS + 1 : row].min()
    return score


def covering_scores(residuals: np.ndarray) -> np.ndarray:
    """Row i's score: the lowest residual of every window that covers it; -inf for the last STEPS - 1 rows.

    Those rows' covering windows run past the file's end, so they stay undecided (never flagged).
    """
    score = to_time_steps(residuals, len(residuals) + STEPS - 1, STEPS, reduce="min")
    score[len(residuals) :] = -np.inf
    return score
