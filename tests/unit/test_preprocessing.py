import numpy as np
import pandas as pd
import pytest

from vae import InputError, VAEDetector
from vae.preprocessing import Preprocessor, as_matrix


def test_scaler_standardizes_and_keeps_constant_columns_finite():
    X = np.c_[np.arange(10.0), np.full(10, 3.0)].astype(np.float32)
    pre = Preprocessor.fit(X)
    Z = pre.transform(X)
    assert Z[:, 0].mean() == pytest.approx(0, abs=1e-6) and Z[:, 0].std() == pytest.approx(1, abs=1e-5)
    assert (Z[:, 1] == 0).all()


def test_dataframe_columns_are_reordered_to_the_contract():
    pre = Preprocessor.fit(np.zeros((3, 2), np.float32), columns=("a", "b"))
    df = pd.DataFrame({"b": [2.0], "extra": ["x"], "a": [1.0]})
    assert pre.check(df).tolist() == [[1.0, 2.0]]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.array([[1.0, np.nan]]), "NaN/inf value"),
        (np.array([[np.inf, 1.0]]), "NaN/inf value"),
        (np.zeros((0, 2)), "no rows"),
        (np.zeros((3, 0)), "no columns"),
        (np.zeros((2, 2, 2)), "2-D input"),
        (np.array([["a", "b"]]), "not numeric"),
        (pd.DataFrame({"a": ["x"], "b": [1.0]}), "non-numeric column"),
    ],
)
def test_bad_input_gets_a_one_line_input_error(bad, message):
    with pytest.raises(InputError, match=message) as info:
        as_matrix(bad)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_nan_message_names_the_column():
    pre = Preprocessor.fit(np.zeros((3, 2), np.float32), columns=("a", "b"))
    with pytest.raises(InputError, match="row 1, column 'b'"):
        pre.check(pd.DataFrame({"a": [0.0, 0.0], "b": [0.0, np.nan]}))


@pytest.fixture(scope="module")
def fitted_df_detector():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(300, 3)), columns=["x", "y", "z"])
    det = VAEDetector(epochs=2, kl_warmup_epochs=1, hidden_dims=(8,), target_fpr=0.05, device="cpu")
    return det.fit(df), df


def test_detector_rejects_wrong_columns_and_counts(fitted_df_detector):
    det, df = fitted_df_detector
    with pytest.raises(InputError, match=r"missing column\(s\) \['z'\]"):
        det.score(df[["x", "y"]])
    with pytest.raises(InputError, match="expected 3 feature"):
        det.score(np.zeros((4, 2)))


def test_detector_scores_reordered_columns_identically(fitted_df_detector):
    det, df = fitted_df_detector
    np.testing.assert_array_equal(det.score(df), det.score(df[["z", "x", "y"]]))


def test_too_few_rows_to_fit():
    with pytest.raises(InputError, match="too few rows to fit"):
        VAEDetector(target_fpr=0.2).fit(np.zeros((20, 3)))
