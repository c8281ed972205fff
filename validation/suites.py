"""The Great Expectations suites that check a window against a data contract, code-first.

Expectations come in two kinds. Batch-level ones (the set of columns, each column's presence and dtype,
row count, freshness, duplicates) stop a run when they fail. Row-level ones (non-null, within range) only
mark the offending rows, which are quarantined. The column set (`schema_suite`) and the column rules
(`column_suite`, a few columns at a time) run on each batch of the window; window rules run once on the
whole window (`count_suite`, `duplicates_suite`, `freshness_suite`).

Example:
    >>> [len(column_suite(rule).expectations) for rule in contract.columns]
"""

from __future__ import annotations

from collections.abc import Sequence

import great_expectations as gx
import great_expectations.expectations as gxe

from validation.contracts import ColumnRule, ContractPolicy

AGE_COLUMN = "_age_days"  # days between the window's end and each row's partition date
HASH_COLUMN = "_row_hash"  # one 64-bit hash of each row's contract columns: equal rows, equal hashes
BATCH_LEVEL = {  # batch-level expectation -> what it checks, in words
    "expect_table_row_count_to_be_between": "row count",
    "expect_column_min_to_be_between": "freshness (days since the newest partition)",
    "expect_column_values_to_be_unique": "duplicate rows",
    "expect_column_to_exist": "column present",
    "expect_table_columns_to_match_set": "columns",
    "expect_column_values_to_be_in_type_list": "dtype",
}
ROW_LEVEL = {  # row-level expectation -> quarantine reason
    "expect_column_values_to_not_be_null": "null",
    "expect_column_values_to_be_between": "out of range",
}


def count_suite(policy: ContractPolicy) -> gx.ExpectationSuite:
    """Enough rows, on a frame with one row per row of the window (it needs no columns)."""
    return gx.ExpectationSuite(
        name="count", expectations=[gxe.ExpectTableRowCountToBeBetween(min_value=policy.min_rows)]
    )


def duplicates_suite(policy: ContractPolicy) -> gx.ExpectationSuite:
    """Few duplicate rows, on a frame of `HASH_COLUMN` (equal rows have equal hashes)."""
    return gx.ExpectationSuite(
        name="duplicates",
        expectations=[
            gxe.ExpectColumnValuesToBeUnique(column=HASH_COLUMN, mostly=1.0 - policy.max_duplicate_fraction)
        ],
    )


def freshness_suite(policy: ContractPolicy) -> gx.ExpectationSuite:
    """Days since the newest partition, on a frame of `AGE_COLUMN` (per row, or per file: the same min)."""
    return gx.ExpectationSuite(
        name="freshness",
        expectations=[gxe.ExpectColumnMinToBeBetween(column=AGE_COLUMN, max_value=policy.max_staleness_days)],
    )


def schema_suite(names: Sequence[str]) -> gx.ExpectationSuite:
    """The batch has exactly these columns: a new, renamed or dropped column stops the run."""
    exact = gxe.ExpectTableColumnsToMatchSet(column_set=list(names), exact_match=True)
    return gx.ExpectationSuite(name="schema", expectations=[exact])


def column_suite(rules: Sequence[ColumnRule]) -> gx.ExpectationSuite:
    """Contract columns: each present, of an allowed dtype, non-null and within range."""
    expectations: list[gxe.Expectation] = []
    for rule in rules:
        expectations += [
            gxe.ExpectColumnToExist(column=rule.name),
            gxe.ExpectColumnValuesToBeInTypeList(column=rule.name, type_list=rule.allowed_dtypes()),
            gxe.ExpectColumnValuesToNotBeNull(column=rule.name),
            gxe.ExpectColumnValuesToBeBetween(column=rule.name, min_value=rule.min, max_value=rule.max),
        ]
    return gx.ExpectationSuite(name="columns", expectations=expectations)
