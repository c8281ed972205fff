"""Settings: a typo anywhere, at the top or in a nested section, is a one-line error naming it."""

from __future__ import annotations

import pytest

from flows.errors import SettingsError
from flows.settings import load_settings


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No SENTINEL_* variables and no sentinel.toml in the working folder."""
    import os

    for name in [n for n in os.environ if n.startswith("SENTINEL_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("variable", "name"),
    [
        ("SENTINEL_RETRAIN__WINDOWDAYS", "retrain.windowdays"),
        ("SENTINEL_MONITOR__TRIGGER__COOLDOWN", "monitor.trigger.cooldown"),
        ("SENTINEL_SERVE__MAXROWS", "serve.maxrows"),
        ("SENTINEL_LAKE__ENDPOINT", "lake.endpoint"),
    ],
)
def test_a_nested_typo_in_the_environment_is_refused(clean_env, monkeypatch, variable, name):
    monkeypatch.setenv(variable, "9")
    with pytest.raises(SettingsError, match=rf"^unknown setting {name} \(from environment\)$"):
        load_settings()


def test_a_nested_typo_in_the_toml_file_is_refused(clean_env):
    (clean_env / "sentinel.toml").write_text("[retrain]\nwindowdays = 9\n")
    with pytest.raises(SettingsError, match=r"^unknown setting retrain\.windowdays \(from sentinel\.toml\)$"):
        load_settings()


def test_the_right_spelling_is_taken(clean_env, monkeypatch):
    monkeypatch.setenv("SENTINEL_RETRAIN__WINDOW_DAYS", "9")
    (clean_env / "sentinel.toml").write_text("[monitor.trigger]\ncooldown_hours = 2\n")
    settings = load_settings()
    assert settings.retrain.window_days == 9
    assert settings.monitor.trigger.cooldown_hours == 2


def test_a_flow_takes_torch_threads_from_the_settings(clean_env, monkeypatch):
    import os

    import torch

    from flows.jobs.common import job_settings

    before = torch.get_num_threads()
    try:
        assert job_settings(None).torch_threads == max(1, (os.cpu_count() or 1) // 2)  # the default
        assert torch.get_num_threads() == max(1, (os.cpu_count() or 1) // 2)
        monkeypatch.setenv("SENTINEL_TORCH_THREADS", "3")  # as a worker's environment would set it
        job_settings(None)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
