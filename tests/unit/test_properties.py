"""Property-based tests (hypothesis) of the core's invariants, for any input hypothesis can think of."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vae import VAEDetector
from vae.calibration import conformal_pvalues, conformal_threshold
from vae.streaming import StreamState, advance
from vae.timeseries import ema
from validation.checks import check_batch
from validation.contracts import DataContract

pytestmark = pytest.mark.reliability  # a fault of the README's Reliability table

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
scores = hnp.arrays(np.float64, st.integers(1, 300), elements=finite)
betas = st.floats(0, 0.99)
quick = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def streamer(pump: pd.DataFrame) -> tuple[VAEDetector, np.ndarray]:
    """A windowed detector fitted on the pump's normal run, and 200 later steps to stream."""
    options = {"epochs": 3, "hidden_dims": (16,), "latent_dim": 2, "device": "cpu"}
    detector = VAEDetector(window=5, seed=0, **options).fit(pump.iloc[:2000])
    return detector, pump.iloc[2000:2200].to_numpy(np.float32)


@quick
@given(cuts=st.lists(st.integers(1, 199), max_size=6), beta=betas)
def test_streaming_in_any_chunks_equals_scoring_the_whole_series(streamer, cuts, beta):
    detector, series = streamer
    bounds = [0, *sorted(set(cuts)), len(series)]  # non-empty chunks (an empty one is refused)
    state, smoothed, steps = StreamState(), [], []
    for start, end in itertools.pairwise(bounds):
        state, out = advance(detector, state, series[start:end], beta, threshold=0.0)
        smoothed.append(out.smoothed)
        steps.append(out.step)
    whole = ema(detector.score(series).astype(np.float64), beta)
    np.testing.assert_allclose(np.concatenate(smoothed), whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.concatenate(steps), np.arange(detector.config.window - 1, len(series)))


@quick
@given(x=scores, split=st.integers(0, 300), beta=betas)
def test_ema_carried_across_a_split_equals_the_ema_of_the_whole(x, split, beta):
    split = min(split, len(x))
    head = ema(x[:split], beta)
    carried = None if split == 0 else float(head[-1])
    tail = ema(x[split:], beta, carried)
    np.testing.assert_allclose(np.concatenate([head, tail]), ema(x, beta), rtol=1e-9, atol=1e-6)


@quick
@given(x=scores, a=st.floats(0.001, 0.5), b=st.floats(0.001, 0.5))
def test_the_conformal_threshold_is_a_calibration_score_and_falls_as_fpr_rises(x, a, b):
    low, high = sorted((a, b))
    if low < 1 / (len(x) + 1):  # n scores cannot resolve it: refused, tested elsewhere
        return
    strict, loose = conformal_threshold(x, low), conformal_threshold(x, high)
    assert strict in x and loose in x
    assert strict >= loose


@quick
@given(calibration=scores, new=hnp.arrays(np.float64, st.integers(0, 50), elements=finite))
def test_p_values_lie_between_one_over_n_plus_one_and_one(calibration, new):
    p = conformal_pvalues(np.sort(calibration), new)
    n = len(calibration)
    assert ((p >= 1 / (n + 1) - 1e-12) & (p <= 1 + 1e-12)).all()


columns = st.lists(
    st.one_of(
        hnp.arrays(np.float64, 20, elements=finite),
        hnp.arrays(np.int64, 20, elements=st.integers(-(10**9), 10**9)),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=15, deadline=None)
@given(data=columns, tolerance=st.floats(0, 1))
def test_a_frame_passes_the_contract_derived_from_itself(data, tolerance):
    frame = pd.DataFrame({f"c{i}": column for i, column in enumerate(data)})
    checked = check_batch(frame, DataContract.derive(frame, tolerance))
    assert checked.reasons.empty, checked.reasons.head()
    assert all(r["success"] for r in checked.results), [r for r in checked.results if not r["success"]]
