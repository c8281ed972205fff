"""The `sentinel` console script, run as a user would run it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.adapters.lake import Lake, open_store
from flows.console.demo import demo_data, seed_lake
from flows.settings import Settings
from tests.flows.conftest import TODAY

ROOT = Path(__file__).resolve().parents[2]


def _sentinel(*args: str, tmp_path: Path, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "SENTINEL_HOME": str(tmp_path / "home"), "COLUMNS": "200", **env}
    return subprocess.run(
        [sys.executable, "-m", "flows", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_help_explains_each_command(tmp_path):
    out = _sentinel("--help", tmp_path=tmp_path)
    assert out.returncode == 0 and "SENTINEL_" in out.stdout
    for command in (
        "demo",
        "retrain",
        "score",
        "serve",
        "export",
        "monitor",
        "deploy",
        "rollback",
        "history",
        "promote",
        "backtest",
        "status",
        "evaluate",
        "config",
    ):
        assert command in out.stdout
    assert "gate" in _sentinel("retrain", "--help", tmp_path=tmp_path).stdout


@pytest.mark.slow
def test_demo_shows_a_first_champion_a_promotion_and_a_refusal(tmp_path):
    out = _sentinel("demo", tmp_path=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.count("promoted to champion") == 2 and "version 3 refused" in out.stdout
    assert "cold start" in out.stdout and "warm start from v1" in out.stdout and "quarantined" in out.stdout
    assert (
        "mlflow ui --backend-store-uri" in out.stdout
        and "sentinel backtest --dataset mammography" in out.stdout
        and "sentinel history" in out.stdout
    )
    assert "s01" in out.stdout.split("monitor as of")[-1] and "retrain: version 4 " in out.stdout
    (demo_home,) = (tmp_path / "home" / "demo").iterdir()

    status = _sentinel("status", "--json", tmp_path=tmp_path, SENTINEL_HOME=str(demo_home))
    report = json.loads(status.stdout)
    assert report["champion"]["version"] == "2" and report["previous"]["version"] == "1"
    low, high = report["champion"]["fpr_interval_95"]
    assert low < 0.01 < high
    shown = _sentinel("status", tmp_path=tmp_path, SENTINEL_HOME=str(demo_home))
    assert (
        f"champion: version 2, threshold {report['champion']['threshold']:.4g}, false-positive"
        in shown.stdout
    )
    assert [v["promoted"] for v in report["versions"]][:3] == [True, True, False]
    assert report["monitor"]["verdict"] == "drift" and report["monitor"]["trigger"].startswith(
        "allowed: 0 of 3"
    )
    assert not all(g["passed"] for g in report["versions"][2]["gates"].values())

    env = {"SENTINEL_HOME": str(demo_home), "SENTINEL_RETRAIN__DATASET": "mammography"}
    scored = _sentinel("score", tmp_path=tmp_path, **env)
    assert scored.returncode == 0 and "rows scored by version 2" in scored.stdout, (
        scored.stdout + scored.stderr
    )
    assert list((demo_home / "lake" / "mammography" / "_alerts").glob("date=*/alerts-v2.parquet"))
    out = tmp_path / "champion.pt"
    exported = _sentinel("export", "--format", "torchscript", "--out", str(out), tmp_path=tmp_path, **env)
    assert exported.returncode == 0 and out.is_file() and "of the score scale" in exported.stdout

    back = _sentinel("rollback", tmp_path=tmp_path, SENTINEL_HOME=str(demo_home))
    assert back.returncode == 0 and "champion is version 1 again (was 2)" in back.stdout
    again = _sentinel("rollback", tmp_path=tmp_path, SENTINEL_HOME=str(demo_home))
    assert again.returncode == 1 and again.stdout.strip().startswith("error: nothing to roll back")

    home = {"SENTINEL_HOME": str(demo_home)}
    no_reason = _sentinel("promote", "3", tmp_path=tmp_path, **home)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    missing = _sentinel("promote", "99", "--reason", "test", tmp_path=tmp_path, **home)
    assert missing.returncode == 1 and "has no version 99" in missing.stdout
    reason = "s01 was recalibrated on purpose"
    forced = _sentinel("promote", "3", "--reason", reason, tmp_path=tmp_path, **home)
    assert "champion is version 3 by hand (was version 1, now previous)" in forced.stdout, forced.stdout
    after = json.loads(_sentinel("status", "--json", tmp_path=tmp_path, **home).stdout)
    assert (after["champion"]["version"], after["previous"]["version"]) == ("3", "1")
    assert after["versions"][2]["override"] == reason and after["versions"][1]["override"] is None
    moves = json.loads(_sentinel("history", "--json", tmp_path=tmp_path, **home).stdout)
    assert [(m["action"], m["champion"], m["replaced"]) for m in moves] == [
        ("promote", "1", None),
        ("promote", "2", "1"),
        ("rollback", "1", "2"),
        ("override", "3", "1"),
    ]
    assert moves[-1]["note"] == reason and {m["state"] for m in moves} == {"done"}
    assert "champion moves of vae-sentinel" in _sentinel("history", tmp_path=tmp_path, **home).stdout


def test_retrain_on_a_missing_dataset_fails_in_one_line(tmp_path):
    out = _sentinel("retrain", "--dataset", "nope", "--as-of", "2026-11-30", tmp_path=tmp_path)
    assert out.returncode == 1
    assert out.stdout.strip().splitlines()[-1].startswith("error: no partitions of 'nope' in ")
    assert out.stdout.strip().endswith("(datasets there: none)")
    assert "Traceback" not in out.stdout + out.stderr


def test_config_shows_each_setting_with_its_origin_and_masks_secrets(tmp_path):
    (tmp_path / "sentinel.toml").write_text("[detector]\ntarget_fpr = 0.005\n[retrain]\nwindow_days = 9\n")
    out = _sentinel(
        "config",
        "--json",
        tmp_path=tmp_path,
        cwd=tmp_path,
        SENTINEL_RETRAIN__WINDOW_DAYS="5",  # the environment wins over the file
        SENTINEL_SERVE__TOKEN="secret-xyz",
    )
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["settings"]["detector.target_fpr"] == {"value": 0.005, "from": "sentinel.toml"}
    assert shown["settings"]["retrain.window_days"] == {"value": 5, "from": "environment"}
    assert shown["settings"]["retrain.holdout_days"] == {"value": 1, "from": "default"}
    assert shown["settings"]["serve.token"]["from"] == "environment" and "secret-xyz" not in out.stdout
    assert shown["resolved"]["tracking URI"] == f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}"


def test_an_invalid_setting_is_named_in_one_line(tmp_path):
    out = _sentinel("status", tmp_path=tmp_path, SENTINEL_DETECTOR__TARGET_FPR="one percent")
    assert out.returncode == 1 and "Traceback" not in out.stdout + out.stderr
    assert out.stdout.strip() == (
        "error: invalid setting detector.target_fpr (from environment): "
        "Input should be a valid number, unable to parse string as a number"
    )
    (tmp_path / "sentinel.toml").write_text("[detector\n")
    out = _sentinel("retrain", tmp_path=tmp_path, cwd=tmp_path)
    assert out.returncode == 1
    assert out.stdout.strip().startswith("error: sentinel.toml is not valid TOML: Expected ']'")


@pytest.mark.slow
def test_an_unreachable_tracking_server_is_one_line(tmp_path):
    # MLflow's own retry policy (7 retries, backoff factor 2) would keep this waiting for minutes.
    out = _sentinel("status", tmp_path=tmp_path, SENTINEL_REGISTRY__TRACKING_URI="http://127.0.0.1:9")
    assert out.returncode == 1 and "Traceback" not in out.stdout + out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("error: cannot list versions of vae-sentinel: API request to http://127.0.0.1:9/")


def test_an_unreachable_prefect_api_is_one_line(tmp_path):
    out = _sentinel("retrain", tmp_path=tmp_path, SENTINEL_PREFECT_API_URL="http://127.0.0.1:9/api")
    assert out.returncode == 1 and "Traceback" not in out.stdout + out.stderr
    assert out.stdout.strip().startswith("error: the Prefect API at http://127.0.0.1:9/api does not answer:")


def test_evaluate_trains_saves_and_prints_a_table_for_tables_and_for_skab_series(tmp_path):
    series = '["valve2/*.csv"]'  # SKAB's four valve2 experiments, shipped in data/timeseries/skab
    out = _sentinel(
        "evaluate",
        tmp_path=tmp_path,
        SENTINEL_EVALUATE__DATASETS='["cardio"]',
        SENTINEL_EVALUATE__SERIES=series,
    )
    assert out.returncode == 0, out.stderr
    assert "AUROC" in out.stdout and "cardio" in out.stdout and "FPR 95% range" in out.stdout
    assert (tmp_path / "home" / "evaluate" / "cardio" / "weights.safetensors").is_file()
    assert "SKAB (4 experiments" in out.stdout and "MAR %" in out.stdout
    rows = [line for line in out.stdout.splitlines() if line.strip("│ ").startswith(("valve2", "all"))]
    assert len(rows) == 2 and rows[0].split("│")[2].strip() == rows[1].split("│")[2].strip()  # all = valve2


def test_evaluate_with_an_unknown_dataset_fails_in_one_line(tmp_path):
    out = _sentinel("evaluate", tmp_path=tmp_path, SENTINEL_EVALUATE__DATASETS='["nope"]')
    assert out.returncode == 1
    assert out.stdout.strip().startswith("error: no shipped dataset 'nope'")
    assert "Traceback" not in out.stdout + out.stderr


def test_a_window_too_large_for_memory_stops_before_reading_in_one_line(tmp_path):
    settings = Settings(home=tmp_path / "home")
    seed_lake(Lake(open_store(settings.lake_root())), demo_data(settings), "mammography", 10, TODAY, seed=0)
    out = _sentinel(
        "retrain", "--as-of", TODAY.isoformat(), tmp_path=tmp_path,
        SENTINEL_RETRAIN__SAMPLE_ROWS="50000000", SENTINEL_RETRAIN__MEMORY_LIMIT_GB="2",
    )  # fmt: skip
    assert out.returncode == 1 and "Traceback" not in out.stdout + out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("error: a window of 7 files") and last.endswith("lower retrain.sample_rows")
    assert not (tmp_path / "home" / "lake" / "mammography" / "_quarantine").exists()  # nothing was read
