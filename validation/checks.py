"""Check a data window against its contract with Great Expectations, batch by batch, at any size.

Column rules (present, dtype, non-null, in range) run on every row of each batch (a lake file), a few
columns at a time: GX's pandas engine copies the frame it checks once per metric, so narrow frames keep
that cheap on large batches. Window rules run on the whole window: row count, freshness on the
partitions' ages, duplicate rows on one 64-bit hash per row, split by hash value so equal rows meet in
one check. `window_report` merges the per-batch results into one GX result and splits failures into
batch level (the run stops) and row level (the rows are quarantined).

Example:
    >>> report = validate_frame(window, contract, policy, as_of=date(2026, 11, 30))
    >>> report.passed, report.quarantined.value_counts()
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import cache
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig

from validation.contracts import ContractPolicy, DataContract
from validation.suites import (
    AGE_COLUMN,
    BATCH_LEVEL,
    HASH_COLUMN,
    ROW_LEVEL,
    column_suite,
    count_suite,
    duplicates_suite,
    freshness_suite,
    schema_suite,
)

_EXAMPLE_ROWS = 5
_GX_LOCK = threading.Lock()
_COUNTS = ("element_count", "unexpected_count", "missing_count")
_CELLS_PER_CHECK = 200_000  # GX copies the checked frame per metric: large batches go a column at a time
_HASHES_PER_CHECK = 4_000_000  # the duplicate rule's hash table stays within a few hundred MB


@dataclass(frozen=True)
class FailedExpectation:
    """One failed batch-level expectation, with what was observed and what was expected."""

    expectation: str
    column: str | None
    observed: str
    expected: str

    def __str__(self) -> str:
        what = BATCH_LEVEL.get(self.expectation, self.expectation)
        where = f" [{self.column}]" if self.column and self.column not in (AGE_COLUMN, HASH_COLUMN) else ""
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


@dataclass(frozen=True)
class BatchCheck:
    """The column rules on one batch: GX's results (JSON) and the reason each failing row is quarantined."""

    n_rows: int
    results: tuple[dict[str, Any], ...]
    reasons: pd.Series  # indexed by the row's position in the batch


def check_batch(frame: pd.DataFrame, contract: DataContract, added: Sequence[str] = ()) -> BatchCheck:
    """Run the contract's rules on every row of `frame` (not modified): its column set, then each column.

    Args:
        frame: the batch: the contract's columns and the columns in `added`, nothing else.
        contract: expected columns, dtypes and ranges.
        added: columns the caller added to the data (e.g. each row's partition date).
    """
    positional = frame.reset_index(drop=True)
    schema = run_suite(positional.head(1), schema_suite([*contract.names, *added]))
    results, reasons = [r.to_json_dict() for r in schema.results], []
    per_batch = max(1, _CELLS_PER_CHECK // max(len(frame), 1))
    for first in range(0, len(contract.columns), per_batch):
        rules = contract.columns[first : first + per_batch]
        columns = positional[[r.name for r in rules if r.name in positional]]
        checked = run_suite(columns, column_suite(rules), "COMPLETE")
        for r in checked.results:
            results.append(r.to_json_dict())
            cfg, rows = r.expectation_config, r.result.get("unexpected_index_list")
            if cfg is not None and cfg.type in ROW_LEVEL and rows:  # no list when the column is missing
                reasons.append(pd.Series(f"{ROW_LEVEL[cfg.type]}: {cfg.kwargs['column']}", index=rows))
    merged = pd.concat(reasons).groupby(level=0).agg("; ".join) if reasons else pd.Series(dtype=object)
    return BatchCheck(len(frame), tuple(results), merged.sort_index())


def row_hashes(frame: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """One 64-bit hash per row of the contract's columns that `frame` has (equal rows, equal hashes)."""
    present = [n for n in names if n in frame]
    return pd.util.hash_pandas_object(frame[present], index=False).to_numpy()


def window_report(
    batches: Sequence[BatchCheck],
    hashes: np.ndarray,
    ages: np.ndarray,
    policy: ContractPolicy,
    examples: pd.DataFrame,
) -> ValidationReport:
    """Decide the window from its batches' column checks, its rows' hashes and its partitions' ages.

    Args:
        batches: each batch's column checks, in window order (row positions continue across batches).
        hashes: `row_hashes` of every row of the window, in window order.
        ages: days between the window's end and each row's partition (or each batch's: the rule takes the
            smallest).
        policy: window limits (rows, freshness, duplicates, largest quarantined share).
        examples: a few quarantined rows (features and reason) to show when the window passes.
    """
    count = run_suite(pd.DataFrame(index=pd.RangeIndex(len(hashes))), count_suite(policy))
    fresh = run_suite(pd.DataFrame({AGE_COLUMN: ages}), freshness_suite(policy))
    results = [r.to_json_dict() for r in (*count.results, *fresh.results)]
    results += _merged([*(b.results for b in batches), *_duplicates(hashes, policy)])
    failures = [
        _describe(r["expectation_config"]["type"], r["expectation_config"]["kwargs"].get("column"),
                  r["expectation_config"]["kwargs"], r["result"])
        for r in results
        if not r["success"] and r["expectation_config"]["type"] not in ROW_LEVEL
    ]  # fmt: skip
    if any(f.expectation == "expect_column_to_exist" for f in failures):  # the rest is fallout
        failures = [f for f in failures if f.observed != "error"]
    offsets = np.cumsum([0, *(b.n_rows for b in batches)])
    parts = [b.reasons.set_axis(b.reasons.index + start) for b, start in zip(batches, offsets, strict=False)]
    quarantined = pd.concat(parts) if any(len(p) for p in parts) else pd.Series(dtype=object)
    share = len(quarantined) / max(len(hashes), 1)
    if share > policy.max_quarantine_fraction:
        causes = quarantined.value_counts().head(3) / len(hashes)  # the reasons that quarantined most
        observed = f"{share:.2%} of rows ({', '.join(f'{r}: {s:.2%}' for r, s in causes.items())})"
        failures.append(
            FailedExpectation("quarantine_share", None, observed, f"<= {policy.max_quarantine_fraction:.2%}")
        )
    gx_result = {
        "success": not failures,
        "statistics": {
            "evaluated_expectations": len(results),
            "successful_expectations": sum(r["success"] for r in results),
            "batches": len(batches),
            "rows": len(hashes),
        },
        "results": results,
    }
    shown = examples if len(quarantined) and not failures else pd.DataFrame()
    return ValidationReport(len(hashes), tuple(failures), quarantined, shown, gx_result)


def validate_frame(
    frame: pd.DataFrame,
    contract: DataContract,
    policy: ContractPolicy,
    as_of: date,
    date_column: str = "_date",
) -> ValidationReport:
    """Run every rule of the contract and policy on `frame` (not modified), as a window of one batch.

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
    batch = check_batch(frame, contract, (date_column,))
    ages = (pd.Timestamp(as_of) - pd.to_datetime(frame[date_column])).dt.days.to_numpy()
    shown = batch.reasons.iloc[:_EXAMPLE_ROWS]
    present = [n for n in contract.names if n in frame]
    examples = frame.iloc[shown.index][present].assign(reason=shown.to_numpy())
    report = window_report([batch], row_hashes(frame, contract.names), ages, policy, examples)
    return replace(report, quarantined=report.quarantined.set_axis(frame.index[report.quarantined.index]))


def run_suite(frame: pd.DataFrame, suite: gx.ExpectationSuite, result_format: str = "SUMMARY") -> Any:
    """Validate `frame` quietly in this process's in-memory GX context (COMPLETE lists failing rows)."""
    with _GX_LOCK:  # one context per process: threads (e.g. of a Dask worker) take turns
        batch = _batches().get_batch(batch_parameters={"dataframe": frame})
        return batch.validate(suite, result_format={"result_format": result_format})


@cache
def _batches() -> Any:
    """A whole-dataframe batch definition in one ephemeral GX context, made once per process.

    One context for every check: a context per check left each checked frame in reference cycles until
    Python's cyclic collector ran, which on a large window held gigabytes.
    """
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas(name="lake").add_dataframe_asset(name="frame")
    return asset.add_batch_definition_whole_dataframe("whole")


def _duplicates(hashes: np.ndarray, policy: ContractPolicy) -> list[list[dict[str, Any]]]:
    """The duplicate rule on parts of the hashes split by value: equal hashes meet in the same part."""
    parts = max(1, -(-len(hashes) // _HASHES_PER_CHECK))
    checked = (
        run_suite(pd.DataFrame({HASH_COLUMN: hashes[hashes % parts == part]}), duplicates_suite(policy))
        for part in range(parts)
    )
    return [[r.to_json_dict() for r in c.results] for c in checked]


def _merged(batches: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One result per expectation over all batches: counts summed, the first failure's details.

    With `mostly`, success is decided again on the summed counts.
    """
    groups: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for batch in batches:
        for r in batch:
            cfg = r["expectation_config"]
            groups.setdefault((cfg["type"], cfg["kwargs"].get("column")), []).append(r)
    merged = []
    for found in groups.values():
        failed = [r for r in found if not r["success"]]
        first = (failed or found)[0]
        result, success = dict(first["result"]), not failed
        for key in ("unexpected_list", "unexpected_index_list", "unexpected_index_query"):
            result.pop(key, None)  # per batch, and as long as the batch: the quarantine file holds them
        if all("unexpected_count" in r["result"] for r in found):
            counts = {k: sum(r["result"].get(k, 0) for r in found) for k in _COUNTS}
            nonmissing = max(counts["element_count"] - counts["missing_count"], 1)
            counts["unexpected_percent"] = 100 * counts["unexpected_count"] / nonmissing
            result |= counts
            mostly = first["expectation_config"]["kwargs"].get("mostly")
            if mostly is not None and all(r["result"] for r in found):
                success = counts["unexpected_count"] <= (1 - mostly) * nonmissing
        config = {k: v for k, v in first["expectation_config"].items() if k != "id"}
        config["kwargs"] = {k: v for k, v in config["kwargs"].items() if k != "batch_id"}
        merged.append({**first, "success": success, "result": result, "expectation_config": config})
    return merged


def _describe(
    kind: str, column: str | None, kwargs: dict[str, Any], result: dict[str, Any]
) -> FailedExpectation:
    """Turn a failed batch-level GX result into observed/expected text."""
    bounds = {
        k: kwargs[k]
        for k in ("value", "min_value", "max_value", "type_list", "mostly")
        if kwargs.get(k) is not None
    }
    mismatched = result.get("details", {}).get("mismatched")
    if kind == "expect_table_columns_to_match_set" and mismatched:
        found = {k: sorted(mismatched.get(k, [])) for k in ("unexpected", "missing")}
        observed = ", ".join(f"{k} columns {names}" for k, names in found.items() if names)
        return FailedExpectation(kind, None, observed, f"exactly {sorted(kwargs['column_set'])}")
    if "observed_value" in result:
        observed = str(result["observed_value"])
    elif "unexpected_percent" in result:
        observed = f"{result['unexpected_percent']:.2f}% unexpected"
    else:
        observed = "column missing" if kind == "expect_column_to_exist" else "error"
    expected = ", ".join(f"{k}={v}" for k, v in bounds.items()) or "column present"
    return FailedExpectation(kind, column, observed, expected)
