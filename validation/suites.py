"""Build the Great Expectations suite that checks a window against a data contract, code-first.

Expectations come in two kinds. Batch-level ones (columns, dtypes, row count, freshness, duplicates) stop
a run when they fail. Row-level ones (non-null, within range) only mark the offending rows, which are
quarantined.

Example:
    >>> suite = build_suite(contract, policy)
    >>> len(suite.expectations)
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

from validation.contracts import ContractPolicy, DataContract

AGE_COLUMN = "_age_days"  # days between the window's end and each row's partition date
BATCH_LEVEL = {  # batch-level expectation -> what it checks, in words
    "expect_table_row_count_to_be_between": "row count",
    "expect_column_min_to_be_between": "freshness (days since the newest partition)",
    "expect_compound_columns_to_be_unique": "duplicate rows",
    "expect_column_to_exist": "column present",
    "expect_column_values_to_be_in_type_list": "dtype",
}
ROW_LEVEL = {  # row-level expectation -> quarantine reason
    "expect_column_values_to_not_be_null": "null",
    "expect_column_values_to_be_between": "out of range",
}


def build_suite(contract: DataContract, policy: ContractPolicy, name: str = "window") -> gx.ExpectationSuite:
    """Every expectation of the contract and policy, as one suite (not yet added to a context)."""
    expectations: list[gxe.Expectation] = [
        gxe.ExpectTableRowCountToBeBetween(min_value=policy.min_rows),
        gxe.ExpectColumnMinToBeBetween(column=AGE_COLUMN, max_value=policy.max_staleness_days),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=list(contract.names), mostly=1.0 - policy.max_duplicate_fraction
        ),
    ]
    for rule in contract.columns:
        expectations += [
            gxe.ExpectColumnToExist(column=rule.name),
            gxe.ExpectColumnValuesToBeInTypeList(column=rule.name, type_list=rule.allowed_dtypes()),
            gxe.ExpectColumnValuesToNotBeNull(column=rule.name),
            gxe.ExpectColumnValuesToBeBetween(column=rule.name, min_value=rule.min, max_value=rule.max),
        ]
    return gx.ExpectationSuite(name=name, expectations=expectations)
