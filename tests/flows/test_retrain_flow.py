"""The retrain flow end to end, under Prefect's test harness, against a temporary SQLite MLflow."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import requests
import torch
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

import flows.jobs.retrain
from flows.adapters.connect import registry_of
from flows.adapters.lake import Lake, open_store
from flows.adapters.manifest import code_hash, device_name
from flows.console.demo import demo_data, seed_lake
from flows.errors import (
    PromotionConflictError,
    RegistryError,
    RegistryUnavailableError,
    ValidationFailedError,
)
from flows.jobs.retrain import retrain
from tests.flows.conftest import TODAY, fast_settings, with_gates

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]


def _raw_digest(settings) -> dict[str, str]:
    root = settings.home / "lake" / "mammography"
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.glob("date=*/*"))
    }


def test_first_run_promotes_and_logs_everything(seeded):
    settings, lake, dates = seeded
    flagged = pd.DataFrame({"_source": f"date={dates[-5].isoformat()}/part-0.parquet", "_row": [0, 3, 4]})
    lake.write_table(f"mammography/_alerts/date={dates[-5].isoformat()}/alerts.parquet", flagged)
    outcome = retrain(settings=settings, as_of=dates[-4])
    assert outcome.promoted and outcome.version == "1" and outcome.start.startswith("cold start")
    assert outcome.rows["alerted_dropped"] == 3
    assert [g.name for g in outcome.decision.gates] == ["loss", "alert_rate", "recall", "export_parity"]
    assert outcome.decision.gates[0].bound is None  # first run: nothing to compare with

    registry = registry_of(settings)
    assert registry.alias_version("champion") == "1"
    client = MlflowClient(settings.tracking_uri())
    run = client.get_run(outcome.run_id)
    assert {"candidate_holdout_loss", "candidate_alert_rate", "candidate_recall", "epoch_loss"} <= set(
        run.data.metrics
    )
    assert run.data.params["as_of"] == dates[-4].isoformat() and len(run.data.tags["window_hash"]) == 64
    artifacts = {a.path for a in client.list_artifacts(outcome.run_id)}
    assert {
        "contract.json",
        "validation.json",
        "gate_report.json",
        "manifest.json",
        "score_distribution.png",
        "export",
    } <= artifacts
    path = client.download_artifacts(outcome.run_id, "manifest.json", str(settings.home))
    manifest = json.loads(Path(path).read_text())
    assert manifest["data"]["hash"] == run.data.tags["window_hash"]
    assert manifest["device"] == run.data.tags["device"] == device_name(settings.detector.device)
    assert manifest["code_hash"] == run.data.tags["code_hash"] == code_hash()
    assert [g["name"] for g in manifest["gates"]] == [g.name for g in outcome.decision.gates]
    assert manifest["detector"]["threshold"] == pytest.approx(registry.champion().detector.threshold_)
    exported = {a.path for a in client.list_artifacts(outcome.run_id, "export")}
    assert exported == {"export/model.onnx", "export/model.pt"}
    rows, scores = registry.load_reference("1")  # the drift reference stored with the version
    assert (
        list(rows.columns) == list(registry.champion().contract.names) and len(rows) == outcome.rows["train"]
    )
    np.testing.assert_allclose(np.sort(scores), registry.champion().detector.calibration_scores_)
    version = client.get_model_version("vae-sentinel", "1")
    assert version.tags["gate.loss"] == "pass" and version.tags["promoted"] == "true"
    assert registry.champion().contract.names == tuple(f"s{i:02d}" for i in range(1, 7))


def test_warm_start_really_starts_from_the_champion_weights(champion):
    settings, _, dates, _ = champion
    train = settings.detector.train.model_copy(update={"lr": 1e-12})  # training cannot move the weights
    frozen = settings.model_copy(update={"detector": settings.detector.model_copy(update={"train": train})})
    outcome = retrain(settings=frozen, as_of=dates[-3])
    assert outcome.start == "warm start from v1"
    registry = registry_of(settings)
    w1 = registry.load_version("1").detector.vae_.state_dict()
    w2 = registry.load_version(outcome.version).detector.vae_.state_dict()
    assert all(torch.allclose(w1[k], w2[k], atol=1e-6) for k in w1)


def test_changed_model_settings_give_a_recorded_cold_start(champion):
    settings, _, dates, _ = champion
    model = settings.detector.model.model_copy(update={"latent_dim": 3})
    other = settings.model_copy(update={"detector": settings.detector.model_copy(update={"model": model})})
    outcome = retrain(settings=other, as_of=dates[-3])
    assert outcome.start == "cold start: model settings or window differ from champion v1"
    assert registry_of(settings).load_version(outcome.version).detector.vae_.latent_dim == 3


def test_a_refused_candidate_leaves_the_champion_and_is_tagged(champion):
    settings, _, dates, _ = champion
    strict = with_gates(settings, alert_rate_lower=3.0, alert_rate_upper=4.0)
    outcome = retrain(settings=strict, as_of=dates[-3])
    assert not outcome.promoted and any("alert rate" in r for r in outcome.decision.reasons)
    registry = registry_of(settings)
    assert registry.alias_version("champion") == "1" and registry.alias_version("previous") is None
    tags = registry.client.get_model_version("vae-sentinel", outcome.version).tags
    assert tags["gate.alert_rate"] == "fail" and tags["promoted"] == "false"


def test_failing_rows_are_quarantined_and_raw_data_is_untouched(champion):
    settings, lake, dates, _ = champion
    before = _raw_digest(settings)
    outcome = retrain(settings=settings, as_of=dates[-1])  # the window holds the failing-sensor day
    assert outcome.rows["quarantined"] > 0
    keys = lake.store.keys("mammography/_quarantine")
    assert len(keys) == 1
    quarantined = lake.read_table(keys[0])
    assert len(quarantined) == outcome.rows["quarantined"]
    assert quarantined["reason"].str.contains("out of range: s01").all()
    assert (quarantined["_date"] == pd.Timestamp(dates[-2])).all()
    assert _raw_digest(settings) == before


def test_a_stale_window_stops_before_training_and_registers_nothing(champion):
    settings = champion.settings
    before = _raw_digest(settings)
    with pytest.raises(ValidationFailedError, match="freshness") as info:
        retrain(settings=settings, as_of=TODAY + timedelta(days=5), window_days=14)
    assert "freshness (days since the newest partition): observed 5" in info.value.details
    versions = registry_of(settings).client.search_model_versions("name='vae-sentinel'")
    assert [str(v.version) for v in versions] == ["1"]
    assert _raw_digest(settings) == before
    assert list((settings.home / "reports" / "mammography").glob("*/validation.json"))


@pytest.mark.reliability
def test_status_rollback_and_compare_and_set(champion, monkeypatch):
    settings, _, dates, first = champion
    lenient = with_gates(settings, loss_tolerance=10.0, recall_tolerance=1.0)
    second = retrain(settings=lenient, as_of=dates[-3])
    assert second.promoted
    registry = registry_of(settings)
    plots = [registry.client.download_artifacts(o.run_id, "score_distribution.png") for o in (first, second)]
    widths = [plt.imread(path).shape[1] for path in plots]
    assert (
        widths[1] == 2 * widths[0]
    )  # the second candidate is plotted beside the champion it was gated against
    status = registry.status()
    assert set(status) == {"model", "champion", "previous", "versions"}
    assert status["champion"]["version"] == "2" and status["previous"]["version"] == "1"
    assert status["champion"]["threshold"] == pytest.approx(second_threshold(registry, second.run_id))
    gates = status["versions"][1]["gates"]
    assert set(gates["loss"]) >= {"value", "bound", "passed"} and gates["loss"]["passed"] is True

    with pytest.raises(PromotionConflictError, match="changed from 1 to 2"):
        registry.promote("1", expected_champion="1", note="test")
    assert registry.alias_version("champion") == "2"

    assert registry.serving_before(dates[-2], "mammography") == "2"
    assert registry.rollback() == ("2", "1")
    assert registry.serving_before(dates[-2], "mammography") == "1"  # v2 was undone: v1 served instead
    assert registry.alias_version("champion") == "1" and registry.alias_version("previous") is None
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback()

    moves = registry.promotions()  # the refused compare-and-set and the failed rollback moved nothing
    assert [(m.action, m.champion, m.replaced, m.state) for m in moves] == [
        ("promote", "1", None, "done"),
        ("promote", "2", "1", "done"),
        ("rollback", "1", "2", "done"),
    ]
    assert f"run {second.run_id}" in moves[1].note and moves[0].at <= moves[1].at <= moves[2].at

    def server_error(*args: object) -> None:
        raise MlflowException("503 from the tracking server")

    monkeypatch.setattr(registry.client, "set_registered_model_alias", server_error)
    with pytest.raises(RegistryUnavailableError, match="cannot move the champion of vae-sentinel: 503"):
        registry.promote("2", expected_champion="1", note="test")
    monkeypatch.undo()
    assert registry.promotions()[-1].state == "failed" and registry.alias_version("champion") == "1"

    monkeypatch.setattr(registry.client, "set_model_version_tag", server_error)  # fails after both aliases
    with pytest.raises(RegistryUnavailableError, match="cannot move the champion of vae-sentinel: 503"):
        registry.promote("2", expected_champion="1", note="test")
    monkeypatch.undo()
    assert registry.alias_version("champion") == "2"  # moved part-way: the flow's retry must finish it
    registry.promote("2", expected_champion="1", note="retry")
    assert (registry.alias_version("champion"), registry.alias_version("previous")) == ("2", "1")
    assert registry.serving_before(dates[-2], "mammography") == "2"  # promoted again after its rollback
    assert [(m.champion, m.replaced, m.state) for m in registry.promotions()[-2:]] == [
        ("2", "1", "failed"),
        ("2", "1", "done"),
    ]


@pytest.mark.reliability
def test_a_champion_that_changes_mid_run_is_not_overwritten(champion, monkeypatch):
    settings, _, dates, _ = champion
    lenient = with_gates(settings, loss_tolerance=10.0, recall_tolerance=1.0)
    retrain(settings=lenient, as_of=dates[-3])
    registry = registry_of(settings)
    registry.client.set_registered_model_alias("vae-sentinel", "champion", "1")  # start: champion v1

    train = flows.jobs.retrain.train_candidate.fn

    def train_while_another_run_promotes(*args, **kwargs):
        detector = train(*args, **kwargs)
        registry.client.set_registered_model_alias("vae-sentinel", "champion", "2")  # a concurrent promotion
        return detector

    monkeypatch.setattr(flows.jobs.retrain.train_candidate, "fn", train_while_another_run_promotes)
    with pytest.raises(PromotionConflictError, match="changed from 1 to 2 while this run trained; version 3"):
        retrain(settings=lenient, as_of=dates[-3])
    assert registry.alias_version("champion") == "2"
    assert registry.client.get_model_version("vae-sentinel", "3").tags["promoted"] == "false"


def _http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} from the artifact store", response=response)


@pytest.mark.parametrize(
    ("failure", "retried"),
    [
        (requests.ConnectionError("no answer"), True),
        (_http_error(503), True),
        (_http_error(403), False),
        (MlflowException("503 from the tracking server"), True),  # INTERNAL_ERROR: a server-side error
        (MlflowException("bad name", error_code=INVALID_PARAMETER_VALUE), False),
    ],
)
def test_registry_failures_are_one_line_and_only_server_side_ones_are_retried(champion, failure, retried):
    registry = registry_of(champion.settings)

    def fails(*args: object) -> None:
        raise failure

    registry.client.log_artifact = fails  # an artifact transfer (requests) or a REST call (MLflow)
    with pytest.raises(RegistryError, match=r"^cannot attach an export to a version of vae-sentinel") as out:
        registry.log_export("1", champion.settings.home / "model.onnx")
    assert isinstance(out.value, RegistryUnavailableError) == retried
    assert "\n" not in str(out.value)


DIE_INSIDE_A_MOVE = """
import os, sys
from pathlib import Path
from flows.adapters.connect import registry_of
from flows.settings import Settings

home, call, argument, version, expected = sys.argv[1:]
registry = registry_of(Settings(home=Path(home)))
original = getattr(registry.client, call)

def dying(*args, **kwargs):
    if argument in args:
        os._exit(9)  # as SIGKILL would: no handler, no ledger close, the file lock freed by the OS
    return original(*args, **kwargs)

setattr(registry.client, call, dying)
registry.promote(version, expected, "a move whose process dies")
"""


@pytest.mark.parametrize(
    ("call", "argument", "landed"),
    [("set_registered_model_alias", "champion", False), ("set_model_version_tag", "promoted", True)],
    ids=["before-the-champion-moved", "after-the-champion-moved"],
)
@pytest.mark.reliability
def test_a_process_killed_inside_a_move_is_unconfirmed_until_the_next_run_settles_it(
    champion, call, argument, landed
):
    settings, _, dates, _ = champion
    lenient = with_gates(settings, loss_tolerance=10.0, recall_tolerance=1.0)
    assert retrain(settings=lenient, as_of=dates[-3]).promoted  # champion 2, previous 1
    registry = registry_of(settings)
    died = subprocess.run(
        [sys.executable, "-c", DIE_INSIDE_A_MOVE, str(settings.home), call, argument, "1", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert died.returncode == 9, died.stderr[-2000:]
    assert registry.promotions()[-1].state == "unconfirmed"
    if not landed:  # it had pointed previous at the champion it was replacing
        assert (registry.alias_version("champion"), registry.alias_version("previous")) == ("2", "2")

    after = retrain(settings=settings, as_of=dates[-2])

    moves = registry.promotions()
    killed = next(m for m in moves if m.note.startswith("a move whose process dies"))
    assert killed.state == ("done" if landed else "failed") and "[reconciled:" in killed.note
    assert all(m.state != "unconfirmed" for m in moves)
    champion_then, previous_then = ("1", "2") if landed else ("2", "1")  # previous as it was before
    aliases = registry.alias_version("champion"), registry.alias_version("previous")
    assert aliases == ((after.version, champion_then) if after.promoted else (champion_then, previous_then))
    promoted = registry.client.get_model_version("vae-sentinel", "1").tags["promoted"]
    assert promoted == "true"  # v1 was promoted once anyway; after a landed move it is tagged again


def second_threshold(registry, run_id: str) -> float:
    return registry.client.get_run(run_id).data.metrics["candidate_threshold"]


def test_champion_loads_as_pyfunc_in_a_fresh_process(champion):
    settings, lake, dates, _ = champion
    rows = lake.read_table(f"mammography/date={dates[-1].isoformat()}/part-0.parquet").head(50)
    rows.to_parquet(settings.home / "rows.parquet")
    code = (
        "import mlflow, pandas as pd, sys\n"
        "m = mlflow.pyfunc.load_model('models:/vae-sentinel@champion')\n"
        f"out = m.predict(pd.read_parquet(r'{settings.home / 'rows.parquet'}').astype('float64'))\n"
        "print(out.to_json(orient='split'))\n"
    )
    # mlflow.set_registry_uri also exports MLFLOW_REGISTRY_URI: the last registry this process used
    uri = settings.tracking_uri()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["columns"] == ["score", "is_anomaly", "p_value"] and len(out["data"]) == 50
    expected = registry_of(settings).champion().detector.score(rows.astype("float64"))
    np.testing.assert_allclose([r[0] for r in out["data"]], expected, rtol=1e-5)


def test_the_flow_reads_and_quarantines_through_s3(tmp_path, s3_endpoint, s3_bucket):
    settings = fast_settings(tmp_path / "home")
    lake_settings = settings.lake.model_copy(
        update={"root": f"s3://{s3_bucket}/lake", "endpoint_url": s3_endpoint}
    )
    settings = settings.model_copy(update={"lake": lake_settings})
    lake = Lake(open_store(settings.lake_root(), s3_endpoint))
    dates = seed_lake(lake, demo_data(settings), "mammography", 10, TODAY, seed=0)
    before = {k: lake.store.read(k) for k in lake.store.keys("mammography") if k.count("date=")}
    assert retrain(settings=settings, as_of=dates[-4]).promoted
    outcome = retrain(settings=settings, as_of=dates[-1])  # the window holds the failing-sensor day
    assert outcome.start == "warm start from v1" and outcome.rows["quarantined"] > 0
    assert len(lake.store.keys("mammography/_quarantine")) == 1
    assert {k: lake.store.read(k) for k in before} == before


@pytest.mark.reliability
def test_a_registration_retried_after_a_server_error_registers_one_version(champion, monkeypatch):
    settings, _, dates, _ = champion
    lenient = with_gates(settings, loss_tolerance=10.0, recall_tolerance=1.0)
    tag = MlflowClient.set_model_version_tag
    calls = []

    def fails_once(self, name, version, key, value):  # the server dies just after the version was created
        if key.startswith("gate."):
            calls.append(version)
            if len(calls) == 1:
                raise MlflowException("503 from the tracking server")
        return tag(self, name, version, key, value)

    monkeypatch.setattr(MlflowClient, "set_model_version_tag", fails_once)
    outcome = retrain(settings=lenient, as_of=dates[-3])  # the register task is retried, and completes
    assert set(calls) == {outcome.version} and len(calls) > 1 and outcome.promoted
    client = registry_of(settings).client
    run_of = client.get_run(outcome.run_id).data.tags["prefect_flow_run"]
    made = [v for v in client.search_model_versions("name='vae-sentinel'") if v.run_id == outcome.run_id]
    assert run_of and len(made) == 1 and made[0].tags["gate.loss"] == "pass"
    assert sorted(int(v.version) for v in client.search_model_versions("name='vae-sentinel'")) == [1, 2]
