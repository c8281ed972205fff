"""The reviewer's view in the core: alert groups, reconstructions, latent means and map, imputation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vae import VAEDetector
from vae.alert_groups import UNGROUPED, group_alerts
from vae.datasets import LabelledSet, inject_faults
from vae.errors import InputError
from vae.latent_map import latent_map

STUCK, DRIFTING = 11, 18  # cardio columns where the detector flags most faulty rows (it misses some columns)


@pytest.fixture(scope="module")
def cardio_detector(cardio: LabelledSet) -> tuple[VAEDetector, np.ndarray, np.ndarray]:
    """A detector fitted on 70% of cardio's normal rows, the other normal rows, and the columns' names."""
    normal = cardio.X[cardio.y == 0]
    order = np.random.default_rng(0).permutation(len(normal))
    cut = int(0.7 * len(normal))
    train = pd.DataFrame(normal[order[:cut]], columns=[f"f{j}" for j in range(normal.shape[1])])
    return VAEDetector(seed=0).fit(train), train.to_numpy(), normal[order[cut:]]


def test_a_stuck_and_a_drifting_sensor_land_in_different_groups(cardio_detector) -> None:
    det, _, rest = cardio_detector
    faulty, truth = inject_faults(rest, [("stuck", STUCK), ("drift", DRIFTING)], 80, seed=1)
    rows = pd.DataFrame(faulty, columns=det.preprocessor_.columns)
    flagged = det.predict(rows).is_anomaly
    assert flagged[truth == 0].mean() > 0.8 and flagged[truth == 1].mean() > 0.6
    grouping = group_alerts(det.feature_contributions(rows[flagged]), det.score(rows[flagged]))
    labels, kinds = grouping.labels, truth[flagged]
    majority = [np.bincount(labels[(kinds == k) & (labels != UNGROUPED)]).argmax() for k in (0, 1)]
    assert majority[0] != majority[1]
    for k, group in enumerate(majority):
        assert np.mean(labels[kinds == k] == group) > 0.7
    drivers = {g.group: next(iter(g.drivers)) for g in grouping.groups}
    assert drivers[majority[0]] == f"f{STUCK}" and drivers[majority[1]] == f"f{DRIFTING}"
    stuck = grouping.groups[majority[0]]
    assert stuck.size == int(np.sum(labels == majority[0]))
    assert set(stuck.examples) <= set(rows[flagged].index)
    assert list(grouping.table()["group"]) == [g.group for g in grouping.groups]


def test_groups_of_many_rows_are_found_on_a_sample_and_given_to_every_row() -> None:
    rng = np.random.default_rng(0)
    shares = np.concatenate([np.eye(4)[rng.integers(0, 2, 600)] + rng.uniform(0, 0.05, (600, 4))])
    contributions = pd.DataFrame(shares * rng.uniform(1, 50, (600, 1)), columns=list("abcd"))
    grouping = group_alerts(contributions, rng.uniform(size=600), max_fit_rows=200)
    assert len(grouping.groups) == 2 and (grouping.labels != UNGROUPED).all()
    for g in grouping.groups:
        assert next(iter(g.drivers)) in "ab" and g.size == int(np.sum(grouping.labels == g.group))


def test_too_few_flagged_rows_form_no_group() -> None:
    grouping = group_alerts(pd.DataFrame(np.eye(3), columns=list("abc")), np.ones(3))
    assert grouping.groups == () and (grouping.labels == UNGROUPED).all()


def test_reconstructions_sit_beside_the_input_and_explain_the_error(cardio_detector) -> None:
    det, train, rest = cardio_detector
    rows = pd.DataFrame(rest[:50], columns=det.preprocessor_.columns)
    rebuilt = det.reconstruct(rows)
    assert list(rebuilt.columns) == list(rows.columns) and rebuilt.index.equals(rows.index)
    weight = det.state().scorer.recon_weight.numpy()
    expected = ((rows.to_numpy(np.float32) - rebuilt.to_numpy()) ** 2 * weight).sum(axis=1)
    np.testing.assert_allclose(det.feature_contributions(rows).sum(axis=1), expected, rtol=1e-4)
    error = np.abs(rebuilt.to_numpy() - rows.to_numpy()).mean()
    assert error < np.abs(rows.to_numpy() - train.mean(axis=0)).mean()  # closer than the training means


def test_a_windowed_reconstruction_is_of_each_windows_last_row(pump: pd.DataFrame) -> None:
    det = VAEDetector(window=8, epochs=3, seed=0).fit(pump.iloc[:2000])
    rebuilt = det.reconstruct(pump.iloc[2000:2100])
    assert rebuilt.shape == (93, pump.shape[1]) and rebuilt.index.equals(pump.index[2007:2100])
    assert det.latent_means(pump.iloc[2000:2100]).shape == (93, det.vae_.latent_dim)


def test_imputation_through_the_decoder_beats_the_training_means(cardio_detector) -> None:
    det, train, rest = cardio_detector
    rng = np.random.default_rng(0)
    missing = rng.uniform(size=rest.shape) < 0.1
    holed = pd.DataFrame(np.where(missing, np.nan, rest), columns=det.preprocessor_.columns)
    filled = det.impute(holed)
    assert isinstance(filled, pd.DataFrame) and not filled.isna().any().any()
    np.testing.assert_array_equal(filled.to_numpy()[~missing], rest[~missing].astype(np.float32))
    assert holed.isna().to_numpy().sum() == missing.sum()  # the caller's frame is left as it was
    rmse = np.sqrt(np.mean((filled.to_numpy()[missing] - rest[missing]) ** 2))
    means = np.broadcast_to(train.mean(axis=0), rest.shape)
    assert rmse < 0.9 * np.sqrt(np.mean((means[missing] - rest[missing]) ** 2))


def test_imputation_refuses_rows_with_nothing_observed_and_windowed_detectors(cardio_detector) -> None:
    det = cardio_detector[0]
    empty = np.full((1, det.n_channels_), np.nan)
    with pytest.raises(InputError, match="no observed value"):
        det.impute(empty)
    with pytest.raises(InputError, match="inf"):
        det.impute(np.full((1, det.n_channels_), np.inf))


@pytest.mark.parametrize("method", ["tsne", "pca"])
def test_the_latent_map_puts_flagged_rows_away_from_normal_ones(cardio_detector, method) -> None:
    det, train, rest = cardio_detector
    faulty, _ = inject_faults(rest, [("stuck", STUCK)], 60, seed=1)
    m = latent_map(det.latent_means(train), det.latent_means(faulty), np.zeros(60), method, max_points=400)
    assert m.reference.shape == (400, 2) and m.flagged.shape == (60, 2) and m.method == method
    centre, spread = m.reference.mean(axis=0), m.reference.std(axis=0).mean()
    assert np.linalg.norm(m.flagged.mean(axis=0) - centre) > spread


def test_the_latent_map_names_bad_input() -> None:
    with pytest.raises(InputError, match="labels"):
        latent_map(np.zeros((5, 3)), np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(InputError, match="projection"):
        latent_map(np.ones((5, 3)), np.ones((2, 3)), method="umap")  # type: ignore[arg-type]
