"""Check a data window against its contract with Great Expectations; split failures into batch and row level.

Example:
    >>> report = validate_frame(window, contract, policy, as_of=date(2026, 11, 30))
    >>> report.passed, report.quarantined.value_counts()
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig

from validation.contracts import ContractPolicy, DataContract
from validation.suites import AGE_COLUMN, BATCH_LEVEL, ROW_LEVEL, build_suite

_EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class FailedExpectation:
    """One failed batch-level expectation, with what was observed and what was expected."""

    expectation: str
    column: str | None
    observed: str
    expected: str

    def __str__(self) -> str:
        what = BATCH_LEVEL.get(self.expectation, self.expectation)
        where = f" [{self.column}]" if self.column and self.column != AGE_COLUMN else ""
        return f"{what}{where}: observed {self.observed}, expected {self.expected} ({self.expectation})"


@dataclass(frozen=True)
class ValidationReport:
    """Outcome of checking one window.

    Attributes:
        n_rows: rows checked.
        batch_failures: failures that stop the run (empty when the window is usable).
        quarantined: reason per offending row, indexed like the checked frame.
        examples: a few offending rows with their reason.
        gx_result: the full Great Expectations validation result (JSON-ready).
    """

    n_rows: int
    batch_failures: tuple[FailedExpectation, ...]
    quarantined: pd.Series
    examples: pd.DataFrame
    gx_result: dict[str, Any]

    @property
    def passed(self) -> bool:
        """True when no batch-level expectation failed."""
        return not self.batch_failures

    def summary(self) -> str:
        """Human-readable lines: each failed expectation, then a few offending rows."""
        lines = [f"{len(self.batch_failures)} batch-level expectation(s) failed on {self.n_rows} rows:"]
        lines += [f"  - {f}" for f in self.batch_failures]
        if not self.examples.empty:
            lines.append(f"offending rows (of {len(self.quarantined)}):\n{self.examples.to_string()}")
        return "\n".join(lines)


def validate_frame(
    frame: pd.DataFrame,
    contract: DataContract,
    policy: ContractPolicy,
    as_of: date,
    date_column: str = "_date",
) -> ValidationReport:
    """Run the contract's expectations on `frame` (not modified) and classify the failures.

    Args:
        frame: the window; feature columns plus `date_column`, each row's partition date.
        contract: expected columns, dtypes and ranges.
        policy: window limits (rows, freshness, duplicates, largest quarantined share).
        as_of: the window's last day, for freshness.
        date_column: the partition-date column of `frame`.

    Returns:
        The report; `passed` is False when a batch-level expectation failed or too many rows were
        quarantined.
    """
    checked = frame.copy(deep=False)
    checked[AGE_COLUMN] = (pd.Timestamp(as_of) - pd.to_datetime(frame[date_column])).dt.days
    result = run_suite(checked, build_suite(contract, policy), "COMPLETE")
    failures, reasons = [], pd.Series(dtype=object)
    for r in result.results:
        cfg = r.expectation_config
        if r.success or cfg is None:
            continue
        column = cfg.kwargs.get("column")
        if cfg.type in ROW_LEVEL:
            if "unexpected_index_list" in r.result:  # absent when the column itself is missing
                bad = pd.Series(f"{ROW_LEVEL[cfg.type]}: {column}", index=r.result["unexpected_index_list"])
                reasons = pd.concat([reasons, bad])
        else:
            failures.append(_describe(cfg.type, column, cfg.kwargs, r.result))
    if any(f.expectation == "expect_column_to_exist" for f in failures):  # the rest is fallout
        failures = [f for f in failures if f.observed != "error"]
    quarantined = reasons.groupby(level=0).agg("; ".join) if len(reasons) else reasons
    share = len(quarantined) / max(len(frame), 1)
    if share > policy.max_quarantine_fraction:
        failures.append(
            FailedExpectation(
                "quarantine_share", None, f"{share:.2%} of rows", f"<= {policy.max_quarantine_fraction:.2%}"
            )
        )
    examples = (
        frame.loc[quarantined.index[:_EXAMPLE_ROWS], list(contract.names)].assign(
            reason=quarantined.iloc[:_EXAMPLE_ROWS]
        )
        if len(quarantined) and not failures
        else pd.DataFrame()
    )
    return ValidationReport(len(frame), tuple(failures), quarantined, examples, result.to_json_dict())


def run_suite(frame: pd.DataFrame, suite: gx.ExpectationSuite, result_format: str = "SUMMARY") -> Any:
    """Validate `frame` in a throwaway in-memory GX context, quietly (COMPLETE lists failing row indices)."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas(name="lake")
        .add_dataframe_asset(name="window")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    return batch.validate(suite, result_format={"result_format": result_format})


def _describe(
    kind: str, column: str | None, kwargs: dict[str, Any], result: dict[str, Any]
) -> FailedExpectation:
    """Turn a failed batch-level GX result into observed/expected text."""
    bounds = {
        k: kwargs[k]
        for k in ("value", "min_value", "max_value", "type_list", "mostly")
        if kwargs.get(k) is not None
    }
    if "observed_value" in result:
        observed = str(result["observed_value"])
    elif "unexpected_percent" in result:
        observed = f"{result['unexpected_percent']:.2f}% unexpected"
    else:
        observed = "column missing" if kind == "expect_column_to_exist" else "error"
    expected = ", ".join(f"{k}={v}" for k, v in bounds.items()) or "column present"
    return FailedExpectation(kind, column, observed, expected)
