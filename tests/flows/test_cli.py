"""The `sentinel` console script, run as a user would run it."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _sentinel(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "SENTINEL_HOME": str(tmp_path / "home"), "COLUMNS": "200", **env}
    return subprocess.run(
        [sys.executable, "-m", "flows", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_help_explains_each_command(tmp_path):
    out = _sentinel("--help", tmp_path=tmp_path)
    assert out.returncode == 0 and "demo" in out.stdout and "SENTINEL_" in out.stdout
    demo_help = _sentinel("demo", "--help", tmp_path=tmp_path)
    assert "calibrated" in demo_help.stdout


def test_demo_trains_saves_and_prints_a_table(tmp_path):
    out = _sentinel("demo", tmp_path=tmp_path, SENTINEL_DEMO__DATASETS='["cardio"]')
    assert out.returncode == 0, out.stderr
    assert "AUROC" in out.stdout and "cardio" in out.stdout
    assert (tmp_path / "home" / "demo" / "cardio" / "weights.safetensors").is_file()


def test_demo_with_an_unknown_dataset_fails_in_one_line(tmp_path):
    out = _sentinel("demo", tmp_path=tmp_path, SENTINEL_DEMO__DATASETS='["nope"]')
    assert out.returncode == 1
    assert out.stdout.strip().startswith("error: no shipped dataset 'nope'")
    assert "Traceback" not in out.stdout + out.stderr
