"""Data contracts: what a training window must look like, learnt from the data a model was trained on.

A contract is stored with every registered version (as JSON) and checked on the next window; it is plain
data, so it can be edited by hand.

Example:
    >>> contract = DataContract.derive(train_frame, tolerance=0.25)
    >>> DataContract.model_validate_json(contract.model_dump_json()) == contract
    True
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from vae.errors import InputError

FLOAT_TYPES = ("float64", "float32", "float16")
INT_TYPES = ("int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8")


class ContractPolicy(BaseModel):
    """How a contract is derived from training data, and how strictly a window is held to it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    range_tolerance: float = Field(
        0.25, ge=0, description="Ranges widen by this share of the training span on each side."
    )
    min_rows: int = Field(500, ge=1, description="Fewest rows a window may have.")
    max_staleness_days: int = Field(2, ge=0, description="Newest partition at most this many days old.")
    max_duplicate_fraction: float = Field(
        0.5, ge=0, le=1, description="Largest share of rows that are exact duplicates of another row."
    )
    max_quarantine_fraction: float = Field(
        0.05, ge=0, le=1, description="Largest share of rows that may be quarantined before the run stops."
    )


class ColumnRule(BaseModel):
    """One expected column: dtype family and the value range rows must fall in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    dtype: str = Field(description="dtype seen in training; compatible dtypes pass (see allowed_dtypes).")
    min: float
    max: float

    def allowed_dtypes(self) -> list[str]:
        """Integer columns may arrive as floats (e.g. from CSV); float columns must stay floats."""
        return list(INT_TYPES + FLOAT_TYPES) if self.dtype in INT_TYPES else list(FLOAT_TYPES)


class DataContract(BaseModel):
    """Expected columns, dtypes and value ranges; window-level limits come from a `ContractPolicy`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: tuple[ColumnRule, ...]
    range_tolerance: float = Field(description="Tolerance the ranges were widened by when derived.")

    @property
    def names(self) -> tuple[str, ...]:
        """Expected column names, in order."""
        return tuple(c.name for c in self.columns)

    @classmethod
    def derive(
        cls, frame: pd.DataFrame, tolerance: float, columns: tuple[str, ...] | None = None
    ) -> DataContract:
        """Learn a contract from training rows: dtypes, and ranges widened by `tolerance` x span per side.

        Args:
            frame: training rows (n_samples, n_features); only numeric columns are allowed.
            tolerance: share of each column's training span added below its min and above its max.
            columns: the feature columns (default: every column of `frame`).

        Raises:
            InputError: no rows, a missing or non-numeric column.
        """
        names = tuple(frame.columns) if columns is None else columns
        missing = [c for c in names if c not in frame.columns]
        if missing or frame.empty:
            raise InputError(f"cannot derive a contract: missing columns {missing}" if missing else "no rows")
        return cls.from_ranges(column_ranges(frame[list(names)]), tolerance)

    @classmethod
    def from_ranges(cls, ranges: pd.DataFrame, tolerance: float) -> DataContract:
        """The contract of columns whose dtype, min and max are known (`column_ranges`, possibly merged).

        Raises:
            InputError: a non-numeric column.
        """
        rules = []
        for name, (dtype, lo, hi) in ranges[["dtype", "min", "max"]].iterrows():
            if dtype not in INT_TYPES + FLOAT_TYPES:
                raise InputError(f"cannot derive a contract: column {name!r} has non-numeric dtype {dtype}")
            lo, hi = float(lo), float(hi)
            pad = tolerance * max(hi - lo, 1e-9 * max(1.0, abs(lo)))
            rules.append(ColumnRule(name=str(name), dtype=dtype, min=lo - pad, max=hi + pad))
        return cls(columns=tuple(rules), range_tolerance=tolerance)


def column_ranges(frame: pd.DataFrame) -> pd.DataFrame:
    """Per column of `frame`: its dtype, min and max (NaN ignored); merge several with `merge_ranges`."""
    numeric = [c for c in frame.columns if str(frame[c].dtype) in INT_TYPES + FLOAT_TYPES]
    ranges = pd.DataFrame({"dtype": frame.dtypes.astype(str), "min": np.nan, "max": np.nan})
    ranges.loc[numeric, "min"] = frame[numeric].min()
    ranges.loc[numeric, "max"] = frame[numeric].max()
    return ranges


def merge_ranges(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The ranges of the rows of several frames together, columns in the first one's order (its dtype)."""
    stacked = pd.concat(parts)
    merged = stacked.groupby(level=0, sort=False).agg({"dtype": "first", "min": "min", "max": "max"})
    return merged.loc[parts[0].index]
