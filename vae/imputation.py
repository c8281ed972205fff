"""Missing values filled through the decoder: encode, decode, keep the observed entries, repeat.

Example:
    >>> filled = impute_rows(detector.state().scorer, values_with_nan, detector.preprocessor_.mean, 20)
"""

from __future__ import annotations

import numpy as np
import torch

from vae.errors import InputError
from vae.scoring import Scorer


def impute_rows(scorer: Scorer, values: np.ndarray, start: np.ndarray, iterations: int) -> np.ndarray:
    """`values` (n_rows, n_features, NaN = missing) with the missing entries replaced by reconstructions.

    Missing entries start at `start` (the training means); each iteration sets them to the decoder's
    output at the posterior mean of the current rows. Rows with nothing missing are returned unchanged.
    """
    if iterations < 1:
        raise InputError(f"iterations must be at least 1, got {iterations}")
    missing = np.isnan(values)
    if missing.all(axis=1).any():
        raise InputError(f"{int(missing.all(axis=1).sum())} row(s) have no observed value to impute from")
    filled = np.where(missing, start.astype(np.float32), values).astype(np.float32)
    todo = np.flatnonzero(missing.any(axis=1))
    if len(todo) == 0:
        return filled
    x, mask = torch.from_numpy(filled[todo]), torch.from_numpy(missing[todo])
    with torch.inference_mode():
        for _ in range(iterations):
            x = torch.where(mask, scorer.decode(scorer.encode(x)[0]), x)
    filled[todo] = x.numpy()
    return filled
