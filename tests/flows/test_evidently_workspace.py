"""Drift history in Evidently's UI: monitor runs add snapshots; `evidently ui` shows them on a dashboard."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from datetime import time as day_start
from pathlib import Path

import httpx
import pytest

from flows.jobs.monitor import monitor
from flows.stack.client import free_ports

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]
EVIDENTLY = Path(sys.executable).with_name("evidently")


@pytest.fixture
def evidently_ui(tmp_path: Path) -> Iterator[tuple[Path, httpx.Client]]:
    """`evidently ui` on a free port over a workspace folder (given before it exists), and a client."""
    (port,) = free_ports(1)
    folder = tmp_path / "home" / "evidently"
    folder.mkdir(parents=True)
    command = [str(EVIDENTLY), "ui", "--workspace", str(folder), "--host", "127.0.0.1", "--port", str(port)]
    log = (tmp_path / "evidently-ui.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        yield folder, client
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def _answer(client: httpx.Client, path: str, seconds: float = 90) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        try:
            response = client.get(path)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            pytest.fail(f"GET {path} did not answer 200 within {seconds:g} s")
        time.sleep(0.5)


@pytest.mark.slow
def test_monitor_runs_show_as_drift_over_time_on_the_evidently_dashboard(champion, evidently_ui):
    settings, _, dates, _ = champion
    folder, client = evidently_ui
    assert folder == settings.home / "evidently"
    quiet = settings.monitor.model_copy(
        update={"trigger": settings.monitor.trigger.model_copy(update={"enabled": False})}
    )
    no_retrain = settings.model_copy(update={"monitor": quiet})
    stable = monitor(settings=no_retrain, as_of=dates[-3])
    drifted = monitor(settings=no_retrain, as_of=dates[-2])  # the day sensor s01 fails
    assert not stable.verdict.drifted and drifted.verdict.drifted

    projects = _answer(client, "/api/projects").json()
    assert [p["name"] for p in projects] == ["mammography"]  # one project per dataset, reused
    project = projects[0]["id"]
    panels = _answer(client, f"/api/v2/dashboards/{project}").json()["panels"]
    titles = [p["title"] for p in panels]
    assert [t.split(" (")[0] for t in titles] == ["Feature drift", "Score drift", "Alert rate"]
    filters = [
        {"tags": [], "metadata": {}, "metric": v["metric"], "metric_labels": v["metric_labels"]}
        for panel in panels
        for v in panel["values"]
    ]
    response = client.post(f"/api/v2/snapshots/{project}/data_series_batch", json={"series_filter": filters})
    response.raise_for_status()
    data = response.json()
    days = sorted({datetime.fromisoformat(s["timestamp"]) for s in data["sources"]})
    assert days == [datetime.combine(d, day_start()) for d in dates[-3:-1]]
    series = {  # each run's two snapshots are sources; a metric has values in the one that holds it
        filters[s["filter_index"]]["metric_labels"]["column"]: [v for v in s["values"] if v is not None]
        for s in data["series"]
    }
    features = [c for c in series if c not in ("score", "alert")]
    assert features == [c.column for c in stable.verdict.features.columns]
    effect = {c.column: c.effect for c in drifted.verdict.features.columns}
    assert series["s01"][-1] == pytest.approx(effect["s01"]) and series["s01"][-1] > 2 * series["s01"][0]
    assert series["alert"] == pytest.approx([stable.verdict.alerts.rate, drifted.verdict.alerts.rate])
