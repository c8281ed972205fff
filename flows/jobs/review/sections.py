"""Each section of the review page, built from what the jobs left and what the model shows.

Inputs are plain data read by `flows/jobs/report.py` (the monitor's summary, the registry's status and
ledger, the day's rows, scores and alerts); outputs are the page's parts (`flows/jobs/review/page.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from flows.adapters.registry import LedgerEntry, LoadedVersion
from flows.jobs.plots import (
    ScorePanel,
    alert_history,
    latent_scatter,
    reconstruction_bars,
    score_distribution,
)
from flows.jobs.review.page import Check, DayVerdict, Example, figure_uri
from flows.settings import ReviewSettings
from vae.alert_groups import UNGROUPED
from vae.latent_map import latent_map
from vae.windowing import Segments

SCORED_SAMPLE = 5000  # consecutive rows of the day on which the champion and a candidate are compared


@dataclass(frozen=True)
class DayAlerts:
    """The day's alerts as `score` wrote them (the newest version's), and the groups found among them."""

    version: str | None  # the model version that scored the day; None: the day was not scored
    alerts: pd.DataFrame
    groups: list[dict[str, Any]]
    key: str | None


def verdict(monitor: dict[str, Any] | None, interval: list[float] | None) -> DayVerdict:
    """The monitor's verdict on the day's window, from its summary; `interval`: the champion's FPR range."""
    if monitor is None:
        return DayVerdict("no monitor run for this day: run `sentinel monitor --as-of DAY`")
    s = monitor["summary"]
    f, sc, a = s["features"], s["scores"], s["alerts"]
    moved = [c["column"] for c in f["columns"] if c["drifted"]]
    checks = (
        Check("features", f"{len(moved)} of {len(f['columns'])} moved", f["drifted"], f["reason"]),
        Check("scores", f"KS {sc['statistic']:.3f}, p={sc['p_value']:.2g}", sc["drifted"], sc["reason"]),
        Check("alerts", f"{a['rate']:.2%} of {a['n_rows']:,}", a["excessive"], a["reason"]),
    )
    expected = "" if interval is None else f", expected {interval[0]:.2%} to {interval[1]:.2%} (95%)"
    volume = f"{a['rate']:.2%} of {a['n_rows']:,} rows against a target of {a['target_fpr']:.2%}{expected}"
    return DayVerdict(str(monitor["verdict"]), checks, volume, str(monitor.get("trigger") or ""))


def history_table(history: pd.DataFrame) -> pd.DataFrame:
    """The span's scored days as numbers (alerts in %)."""
    if history.empty:
        return history
    shown = history.assign(alert_rate=(100 * history["alert_rate"]).round(2))
    return shown.rename(columns={"alert_rate": "alerts %"}).round(4)


def history_figure(
    history: pd.DataFrame, span: tuple[date, date], moves: list[LedgerEntry], target_fpr: float
) -> str | None:
    """The alert rate and score quantiles over the span, champion moves marked; None without a day."""
    if history.empty:
        return None
    inside = [m for m in moves if span[0] <= m.at.date() <= span[1]]
    changes = [(m.at.date(), f"v{m.champion} ({m.action})") for m in inside]
    return figure_uri(alert_history(history, span, target_fpr, changes))


def alerts_line(day: DayAlerts, n_rows: int) -> str:
    """One line on the day's alerts: how many, by which version, how many grouped, and where."""
    if day.version is None:
        return f"{n_rows:,} rows that day, not scored yet: run `sentinel score --date DAY`."
    grouped = int((day.alerts["group"] != UNGROUPED).sum()) if len(day.alerts) else 0
    return (
        f"{len(day.alerts):,} alerts among {n_rows:,} rows, scored by version {day.version}; "
        f"{grouped:,} of them in {len(day.groups)} group(s). Alerts file: {day.key}"
    )


def positions(rows: pd.DataFrame, alerts: pd.DataFrame) -> np.ndarray:
    """Where each alert's row is among the day's rows (-1: not among them)."""
    where = pd.Series(np.arange(len(rows)), index=pd.MultiIndex.from_frame(rows[["_source", "_row"]]))
    found = where.reindex(pd.MultiIndex.from_frame(alerts[["_source", "_row"]]))
    return found.fillna(-1).to_numpy(dtype=np.int64)


def windows_ending(scorer: LoadedVersion, rows: pd.DataFrame, ends: np.ndarray) -> Segments:
    """The model's samples whose last row is at each position in `ends` (a row, or a window up to it)."""
    steps, features = scorer.detector.config.window, rows[list(scorer.contract.names)]
    return Segments(features.iloc[end - steps + 1 : end + 1] for end in ends)


def latent_figure(
    scorer: LoadedVersion | None,
    reference: pd.DataFrame | None,
    rows: pd.DataFrame,
    day: DayAlerts,
    review: ReviewSettings,
    seed: int,
) -> str | None:
    """Normal rows against the day's flagged rows in the scoring version's latent space, by group.

    Normal rows: the version's reference sample of its training rows; for a windowed model, a sample of
    the day's unflagged windows (single sampled rows make no windows).
    """
    if scorer is None or day.alerts.empty:
        return None
    detector, steps = scorer.detector, scorer.detector.config.window
    rng, most = np.random.default_rng(seed), review.map_points
    at = positions(rows, day.alerts)
    keep = np.flatnonzero(at >= steps - 1)  # a window reaching back before the day is left out
    if not len(keep):
        return None
    keep = np.sort(rng.choice(keep, min(len(keep), most), replace=False))  # the map shows a sample
    if reference is not None and steps == 1:
        normal, label = detector.latent_means(reference[list(scorer.contract.names)]), "training rows"
    else:
        quiet = np.setdiff1d(np.arange(steps - 1, len(rows)), at)
        sample = np.sort(rng.choice(quiet, min(len(quiet), most), replace=False))
        normal = detector.latent_means(windows_ending(scorer, rows, sample))
        label = "unflagged windows of the day"
    flagged = detector.latent_means(windows_ending(scorer, rows, at[keep]))
    labels = day.alerts["group"].to_numpy()[keep]
    points = latent_map(normal, flagged, labels, review.map_method, review.map_points, seed)
    title = f"Version {scorer.version}: {label} vs the day's alerts"
    return figure_uri(latent_scatter(points, title, "alert"))


def examples(
    scorer: LoadedVersion | None, rows: pd.DataFrame, day: DayAlerts, most: int
) -> tuple[Example, ...]:
    """Up to `most` flagged rows, the highest-scoring of each group first, beside their reconstructions.

    Values are standardized with the model's scaler, so features of different units share one axis.
    """
    if scorer is None or day.alerts.empty or most == 0:
        return ()
    detector, names = scorer.detector, list(scorer.contract.names)
    alerts = day.alerts.sort_values("score", ascending=False)
    firsts = alerts.drop_duplicates("group")
    chosen = pd.concat([firsts, alerts.drop(firsts.index)])
    at = positions(rows, chosen)
    usable = at >= detector.config.window - 1  # a window reaching back before the day is left out
    chosen, at = chosen.loc[usable].head(most), at[usable][:most]
    if chosen.empty:
        return ()
    samples = windows_ending(scorer, rows, at)
    pre = detector.preprocessor_
    mean, scale = pre.mean[-pre.n_channels :], pre.scale[-pre.n_channels :]
    inputs = (pre.check(samples)[:, -pre.n_channels :] - mean) / scale  # as the model sees the last step
    rebuilt = (detector.reconstruct(samples).to_numpy() - mean) / scale
    contributions = detector.feature_contributions(samples).to_numpy()
    shares = contributions / contributions.sum(axis=1, keepdims=True)
    out = []
    for i, (_, alert) in enumerate(chosen.iterrows()):
        group = "ungrouped" if alert["group"] == UNGROUPED else f"group {alert['group']}"
        title = f"{alert['_source']}#{alert['_row']}: score {alert['score']:.3g}, {group}"
        figure = reconstruction_bars(
            pd.Series(inputs[i], names), pd.Series(rebuilt[i], names), pd.Series(shares[i], names)
        )
        out.append(Example(title, figure_uri(figure)))
    return tuple(out)


def models_table(status: dict[str, Any], champion: LoadedVersion | None, candidates: int) -> pd.DataFrame:
    """The champion and the newest other versions side by side: each gate's verdict and value."""
    versions = {v["version"]: v for v in status["versions"]}
    current = champion.version if champion is not None else None
    others = [v for v in reversed(list(versions)) if v != current][:candidates]
    shown = ([current] if current in versions else []) + others
    if not shown:
        return pd.DataFrame()
    names = list(dict.fromkeys(name for v in shown for name in versions[v]["gates"]))
    table = {"gate": [*names, "manual override"]}
    for v in shown:
        entry = versions[v]
        role = "champion" if v == current else ("was promoted" if entry["promoted"] else "refused")
        table[f"v{v} ({role})"] = [*(_gate(entry["gates"].get(n)) for n in names), entry["override"] or ""]
    return pd.DataFrame(table)


def _gate(gate: dict[str, Any] | None) -> str:
    if gate is None:
        return ""
    return f"{'pass' if gate['passed'] else 'FAIL'}: {gate['value']:.4g} ({gate['reason']})"


def scores_figure(models: list[LoadedVersion], rows: pd.DataFrame) -> str | None:
    """Each model's scores on the same rows of the day (the first SCORED_SAMPLE), thresholds marked."""
    if not models or rows.empty:
        return None
    sample = rows.iloc[:SCORED_SAMPLE]
    panels = []
    for m in models:
        scores = m.detector.score(sample[list(m.contract.names)])
        panels.append(ScorePanel(f"version {m.version}", {"the day's rows": scores}, m.detector.threshold_))
    return figure_uri(score_distribution(*panels))
