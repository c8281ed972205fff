"""Split a time-stamped window by time: older days train, the newest days calibrate and evaluate.

Example:
    >>> split = holdout_split(rows, holdout_days=1, seed=0)  # rows carry a `_date` column
    >>> len(split.train), len(split.calibration), len(split.evaluation)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vae.errors import InputError


@dataclass(frozen=True)
class HoldoutSplit:
    """Training rows (older days) and the newest days, halved into calibration and evaluation rows."""

    train: pd.DataFrame
    calibration: pd.DataFrame
    evaluation: pd.DataFrame


def holdout_split(rows: pd.DataFrame, holdout_days: int, seed: int, in_order: bool = False) -> HoldoutSplit:
    """Older days train; the newest `holdout_days` days are halved into calibration and evaluation rows.

    The halves are seeded random rows, or with `in_order` (windowed models, which need consecutive rows)
    the older and the newer half of the holdout.

    Raises:
        InputError: the window does not span more days than the holdout.
    """
    days = np.sort(rows["_date"].unique())
    if len(days) <= holdout_days:
        raise InputError(f"window spans {len(days)} day(s); need more than the {holdout_days} holdout day(s)")
    newest = rows["_date"] >= days[-holdout_days]
    holdout = rows.loc[newest]
    order = np.arange(len(holdout)) if in_order else np.random.default_rng(seed).permutation(len(holdout))
    half = len(holdout) // 2
    calib, evaluation = holdout.iloc[np.sort(order[:half])], holdout.iloc[np.sort(order[half:])]
    return HoldoutSplit(rows.loc[~newest], calib, evaluation)
