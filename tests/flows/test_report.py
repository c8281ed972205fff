"""The review page: written from what score and monitor left, read in headless Chromium like a reviewer."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.jobs.monitor import monitor
from flows.jobs.report import report
from flows.jobs.score import score

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]
SECTIONS = ("verdict", "history", "groups", "latent-map", "examples", "models", "links")
CHROMIUM = shutil.which("chromium")
BROWSER_FLAGS = [  # no sandbox as root; no background calls to the outside, which this machine refuses
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _open_in_chromium(page: Path, screenshot: Path) -> dict[str, object]:
    """What a reviewer's browser shows: sections, images drawn, tables, console messages."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed: `make install` installs Debian's chromium package as root")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
        tab = browser.new_page(viewport={"width": 1200, "height": 900})
        messages: list[tuple[str, str]] = []
        tab.on("console", lambda m: messages.append((m.type, m.text)))
        tab.on("pageerror", lambda e: messages.append(("pageerror", str(e))))
        tab.goto(page.resolve().as_uri())
        seen = {
            "sections": tab.eval_on_selector_all("section", "s => s.map(e => e.id)"),
            "headings": tab.eval_on_selector_all("section h2", "h => h.map(e => e.textContent)"),
            "images": tab.eval_on_selector_all("img", "i => i.map(e => [e.alt, e.naturalWidth])"),
            "groups": tab.inner_text("#groups"),
            "models": tab.inner_text("#models"),
            "verdict": tab.inner_text("#verdict"),
            "links": tab.eval_on_selector_all("#links a", "a => a.map(e => e.href)"),
            "messages": messages,
        }
        tab.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return seen


@pytest.mark.slow
def test_the_review_page_of_a_failing_day_has_every_section_in_a_browser(champion, tmp_path):
    settings, _, dates, _ = champion
    scored = [score(settings=settings, dataset="mammography", day=day) for day in dates[-3:-1]]
    watched = monitor(settings=settings, as_of=dates[-2])  # s01 fails that day: drift, a triggered retrain
    outcome = report(settings=settings, dataset="mammography", day=dates[-2])

    assert outcome.page.parent == settings.home / "reports" / "mammography" and outcome.page.is_file()
    seen = _open_in_chromium(outcome.page, tmp_path / "review.png")
    assert seen["messages"] == []  # no console error, no script error
    assert seen["sections"] == list(SECTIONS)
    assert all(width > 0 for _, width in seen["images"]), seen["images"]  # every figure drawn
    alts = [alt for alt, _ in seen["images"]]  # history, latent map, example rows, the models' scores
    assert alts[0].startswith("alert rate") and alts[1].startswith("latent map")
    assert alts[-1].startswith("champion and candidate") and len(alts) >= 4
    assert "drift" in seen["verdict"] and "s01" in seen["verdict"]
    assert "s01" in seen["groups"].split("drivers")[1]  # the failing sensor drives a group
    assert "(champion)" in seen["models"] and "gate" in seen["models"]
    assert any(link.endswith("features.html") for link in seen["links"])
    assert any("_alerts" in link for link in seen["links"])
    assert (tmp_path / "review.png").stat().st_size > 50_000

    client = MlflowClient(settings.tracking_uri())
    assert [a.path for a in client.list_artifacts(outcome.run_id)] == [outcome.page.name]
    assert client.get_run(outcome.run_id).data.tags["day"] == dates[-2].isoformat()
    with get_client(sync_client=True) as prefect:  # the page's link, and the day's alert groups as a table
        found, groups = (
            prefect.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
            for key in ("review-mammography", "alert-groups-mammography")
        )
    assert found and found[0].type == "markdown" and outcome.page.name in found[0].data
    table = next(a.data for a in groups if f"on {dates[-2]}," in a.data).splitlines()[2:]
    assert [cell.strip() for cell in table[0].strip("|").split("|")][:2] == ["group", "rows"]
    assert len(table) == 2 + len(scored[-1].groups.groups) > 2
    assert watched.verdict.drifted


def test_a_day_not_yet_scored_or_monitored_says_so_instead_of_failing(champion):
    settings, _, dates, _ = champion
    outcome = report(settings=settings, dataset="mammography", day=dates[-5])
    html = outcome.page.read_text()
    assert "no monitor run for this day" in html and "not scored yet" in html
    for section in SECTIONS:
        assert f'<section id="{section}">' in html
