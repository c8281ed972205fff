"""The review page's content and its rendering: one self-contained HTML file (figures inlined as PNG).

`flows/jobs/report.py` gathers what goes in; this module only lays it out (Jinja2, autoescaped), so the
page opens from disk without a server and has no script.

Example:
    >>> html = render(ReviewPage(dataset="mammography", day=date(2026, 12, 1), ...))
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from matplotlib.figure import Figure

TEMPLATE = "page.html.j2"


@dataclass(frozen=True)
class Check:
    """One drift check of the day: its value, whether it moved, and why."""

    name: str
    value: str
    moved: bool
    reason: str


@dataclass(frozen=True)
class DayVerdict:
    """The monitor's verdict on the day's window, or `status` saying there was none."""

    status: str  # "drift", "stable", or why there is no verdict
    checks: tuple[Check, ...] = ()
    alert_volume: str = ""  # the day's alert rate against the target and its expected range
    trigger: str = ""  # what the retrain trigger did


@dataclass(frozen=True)
class Example:
    """One flagged row: where it is, its score and group, and its input beside the reconstruction."""

    title: str
    figure: str  # data URI


@dataclass(frozen=True)
class Link:
    """Somewhere to look further: a URL (or file URI), or a note where there is nothing to open."""

    label: str
    href: str | None
    note: str = ""


@dataclass(frozen=True)
class ReviewPage:
    """Everything on one day's page, top to bottom."""

    dataset: str
    day: date
    model: str
    champion: str | None
    verdict: DayVerdict
    history: str | None  # data URI of the alert-volume plot
    history_table: pd.DataFrame
    alerts: str  # one line: rows scored, alerts, version
    groups: pd.DataFrame
    latent_map: str | None
    examples: tuple[Example, ...]
    models: pd.DataFrame  # gates (rows) by version (columns)
    model_scores: str | None  # data URI: champion vs candidate scores on the day's rows
    links: tuple[Link, ...]
    generated: datetime = field(default_factory=datetime.now)


def figure_uri(figure: Figure) -> str:
    """A figure as an inline PNG data URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def render(page: ReviewPage) -> str:
    """The page as one HTML document."""
    environment = Environment(
        loader=FileSystemLoader(Path(__file__).parent), autoescape=select_autoescape(["html", "j2"])
    )
    environment.filters["table"] = _table
    return environment.get_template(TEMPLATE).render(page=page)


def _table(frame: pd.DataFrame) -> Markup:
    """A frame as an HTML table (its cells escaped by pandas)."""
    return Markup(frame.to_html(index=False, border=0, classes="grid", na_rep="", escape=True))
