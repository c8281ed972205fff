"""Data contracts checked with Great Expectations on real rows, with one broken frame per rule."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from vae import InputError
from validation.checks import validate_frame
from validation.contracts import ContractPolicy, DataContract

AS_OF = date(2026, 11, 30)
POLICY = ContractPolicy(
    min_rows=100, max_staleness_days=2, max_duplicate_fraction=0.05, max_quarantine_fraction=0.05
)


@pytest.fixture
def frames(cardio):
    """Cardio's normal rows as a named frame: the first 1200 derive the contract, 400 of them are checked."""
    normal = pd.DataFrame(cardio.X[cardio.y == 0], columns=[f"c{i:02d}" for i in range(cardio.X.shape[1])])
    window = normal.iloc[800:1200].reset_index(drop=True).assign(_date=pd.Timestamp(AS_OF))
    return DataContract.derive(normal.iloc[:1200], tolerance=0.25), window


def test_rows_inside_the_contract_pass(frames):
    contract, window = frames
    report = validate_frame(window, contract, POLICY, AS_OF)
    assert report.passed and len(report.quarantined) == 0 and report.gx_result["success"]


def test_contract_ranges_widen_by_the_tolerance_and_round_trip_as_json(frames, cardio):
    contract, _ = frames
    col = cardio.X[cardio.y == 0][:1200, 0]
    rule = contract.columns[0]
    assert rule.min == pytest.approx(col.min() - 0.25 * np.ptp(col)) and rule.dtype == "float64"
    assert DataContract.model_validate_json(contract.model_dump_json()) == contract


def test_out_of_range_and_null_rows_are_quarantined_with_reasons_and_the_input_is_not_modified(frames):
    contract, window = frames
    window.loc[[3, 7], "c02"] = 1e6
    window.loc[[7, 9], "c05"] = np.nan
    before = window.copy()
    report = validate_frame(window, contract, POLICY, AS_OF)
    assert report.passed
    assert report.quarantined.to_dict() == {
        3: "out of range: c02",
        7: "out of range: c02; null: c05",
        9: "null: c05",
    }
    pd.testing.assert_frame_equal(window, before)
    assert list(report.examples.index) == [3, 7, 9]


def test_too_many_quarantined_rows_fail_the_batch(frames):
    contract, window = frames
    window.loc[:40, "c02"] = 1e6  # 41 of 400 rows > 5%
    report = validate_frame(window, contract, POLICY, AS_OF)
    assert not report.passed and report.batch_failures[0].expectation == "quarantine_share"


@pytest.mark.parametrize(
    ("breakage", "expectation"),
    [
        (lambda w: w.drop(columns=["c03"]), "expect_column_to_exist"),
        (lambda w: w.head(50), "expect_table_row_count_to_be_between"),
        (lambda w: w.assign(_date=pd.Timestamp(2026, 11, 20)), "expect_column_min_to_be_between"),
        (lambda w: pd.concat([w, w.head(60)], ignore_index=True), "expect_column_values_to_be_unique"),
        (lambda w: w.assign(c04="x"), "expect_column_values_to_be_in_type_list"),
    ],
    ids=["missing-column", "too-few-rows", "stale", "duplicates", "wrong-dtype"],
)
def test_each_batch_rule_fails_on_its_broken_frame(frames, breakage, expectation):
    contract, window = frames
    report = validate_frame(breakage(window), contract, POLICY, AS_OF)
    assert not report.passed
    assert expectation in [f.expectation for f in report.batch_failures]
    assert expectation in report.summary()


def test_deriving_a_contract_refuses_text_columns():
    with pytest.raises(InputError, match="non-numeric dtype"):
        DataContract.derive(pd.DataFrame({"a": ["x", "y"]}), tolerance=0.1)
