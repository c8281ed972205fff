import numpy as np
import pytest

from vae import InputError, ema, to_time_steps, windows


def test_windows_of_a_univariate_series():
    W = windows(np.arange(10.0), size=4, stride=3)
    assert W.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]


def test_windows_align_a_last_window_to_the_end():
    W = windows(np.arange(10.0), size=4, stride=4)
    assert W[:, 0].tolist() == [0, 4, 6]


def test_multivariate_windows_are_time_major():
    series = np.c_[np.arange(5.0), 10 + np.arange(5.0)]
    assert windows(series, size=2)[0].tolist() == [0, 10, 1, 11]


def test_window_scores_map_back_to_steps():
    n, size = 10, 4
    scores = np.arange(7.0)  # windows start at 0..6
    assert to_time_steps(scores, n, size, reduce="max").tolist() == [0, 1, 2, 3, 4, 5, 6, 6, 6, 6]
    mean = to_time_steps(scores, n, size, reduce="mean")
    assert mean[0] == 0 and mean[3] == pytest.approx(1.5) and mean[9] == 6
    assert to_time_steps(scores, n, size, reduce="min").tolist() == [0, 0, 0, 0, 1, 2, 3, 4, 5, 6]


def test_with_min_a_step_is_above_a_threshold_only_when_every_window_covering_it_is():
    n, size = 12, 4
    scores = np.zeros(9)
    scores[3:6] = 5.0  # three windows high (starting at 3, 4, 5): four windows cover every inner step
    assert not (to_time_steps(scores, n, size, reduce="min") > 1).any()
    scores[2:8] = 5.0  # windows 2..7 high: steps 5, 6, 7 lie in no other window
    assert np.flatnonzero(to_time_steps(scores, n, size, reduce="min") > 1).tolist() == [5, 6, 7]


def test_short_series_and_nan_are_refused():
    with pytest.raises(InputError, match="shorter than the window"):
        windows(np.arange(3.0), size=4)
    with pytest.raises(InputError, match="NaN"):
        windows(np.array([1.0, np.nan, 2.0]), size=2)


def test_ema_matches_its_recursion():
    x = np.random.default_rng(0).normal(size=50)
    expected = [x[0]]
    for v in x[1:]:
        expected.append(0.8 * expected[-1] + 0.2 * v)
    np.testing.assert_allclose(ema(x, 0.8), expected)
    np.testing.assert_array_equal(ema(x, 0.0), x)


def test_ema_resumes_from_a_carried_state():
    x = np.random.default_rng(1).normal(size=40)
    whole = ema(x, 0.8)
    np.testing.assert_allclose(ema(x[25:], 0.8, initial=whole[24]), whole[25:])
