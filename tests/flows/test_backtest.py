"""Replayed retraining: the real flow on a scratch copy; the real lake and registry untouched."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from flows.adapters.connect import registry_of
from flows.errors import RegistryError
from flows.jobs.backtest import replay, replay_days, scratch_settings
from flows.jobs.retrain import retrain
from vae import InputError

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]


def _digest(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.*")}


@pytest.mark.slow
def test_replay_runs_the_flow_per_day_on_a_scratch_copy(seeded, tmp_path):
    settings, lake, dates = seeded
    flagged = pd.DataFrame({"_source": f"date={dates[-5].isoformat()}/part-0.parquet", "_row": [0, 3, 4]})
    lake.write_table(f"mammography/_alerts/date={dates[-5].isoformat()}/alerts-v1.parquet", flagged)
    lake_root = settings.home / "lake"
    before = _digest(lake_root)
    days = replay_days(dates[-4], dates[-1], 1)
    steps = replay(settings, "mammography", days, tmp_path / "replay")

    assert [s.as_of for s in steps] == days and steps[0].outcome.start.startswith("cold start")
    assert steps[0].outcome.rows["alerted_dropped"] == 3  # as the real retrain then: flagged rows dropped
    assert steps[1].outcome.start == "warm start from v1"
    assert {s.verdict for s in steps} == {"promoted", "refused"}  # the failing sensor's window is refused
    scratch = registry_of(scratch_settings(settings, tmp_path / "replay")).status()
    assert [v["promoted"] for v in scratch["versions"]] == [s.verdict == "promoted" for s in steps]
    assert registry_of(settings).status()["versions"] == []  # the real registry was never written
    assert _digest(lake_root) == before  # nor the real lake: quarantined rows went to the scratch copy


@pytest.mark.slow
def test_replay_can_start_from_a_version_of_the_real_registry(seeded, tmp_path):
    settings, lake, dates = seeded
    real = registry_of(settings)
    served = retrain(settings=settings, dataset="mammography", as_of=dates[-5], reason="test")
    assert served.promoted and real.serving_before(dates[-4], "mammography") == served.version
    assert real.serving_before(dates[-5], "mammography") is None  # trained on data up to that day
    assert real.serving_before(dates[-4], "other") is None
    real_versions = real.status()["versions"]
    steps = replay(settings, "mammography", [dates[-4]], tmp_path / "replay", champion=served.version)

    scratch = registry_of(scratch_settings(settings, tmp_path / "replay"))
    adopted = scratch.load_version("1")
    rows = lake.read_window("mammography", dates[-4], 1)[list(adopted.contract.names)]
    original = real.load_version(served.version).detector
    assert np.array_equal(adopted.detector.score(rows), original.score(rows))  # the same model, copied
    assert steps[0].outcome.start == "warm start from v1"  # trained from it
    loss = next(g for g in steps[0].outcome.decision.gates if g.name == "loss")
    assert loss.bound is not None  # gated against it
    assert scratch.status()["versions"][0]["promoted"] and real.status()["versions"] == real_versions
    with pytest.raises(RegistryError, match="has no version 99"):
        replay(settings, "mammography", [dates[-4]], tmp_path / "again", champion="99")


@pytest.mark.slow
def test_a_window_without_a_candidate_is_reported_and_the_replay_goes_on(seeded, tmp_path):
    settings, _, dates = seeded
    days = [dates[0] - timedelta(days=10), dates[0], dates[2]]
    steps = replay(settings, "mammography", days, tmp_path / "replay")
    assert [s.verdict for s in steps] == ["no candidate", "no candidate", "promoted"]
    assert "no partitions of 'mammography'" in steps[0].stopped and "window spans 1 day" in steps[1].stopped


def test_a_day_that_cannot_calibrate_is_reported_not_fatal(seeded, tmp_path):
    settings, _, dates = seeded
    strict = settings.model_copy(
        update={"detector": settings.detector.model_copy(update={"target_fpr": 1e-5})}
    )
    (step,) = replay(strict, "mammography", [dates[-4]], tmp_path / "replay")
    assert step.verdict == "no candidate" and "needs at least" in step.stopped


def test_replay_days_follow_the_cadence():
    assert replay_days(date(2026, 11, 1), date(2026, 11, 10), 4) == [date(2026, 11, d) for d in (1, 5, 9)]
    assert replay_days(date(2026, 11, 1), date(2026, 11, 1), 1) == [date(2026, 11, 1)]
    with pytest.raises(InputError, match="--from <= --to"):
        replay_days(date(2026, 11, 2), date(2026, 11, 1), 1)
