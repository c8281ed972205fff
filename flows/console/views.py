"""Terminal views of flow results: gate tables, registry status, promotion history."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # the flows import Prefect: views that only read their results need not
    from flows.adapters.registry import LedgerEntry
    from flows.jobs.backtest import ReplayStep
    from flows.jobs.monitor import MonitorOutcome
    from flows.jobs.retrain import RetrainOutcome
    from vae.alert_groups import AlertGrouping
    from validation.gates import GateResult


def _bound(bound: float | tuple[float, float] | list[float] | None) -> str:
    if bound is None:
        return "-"
    if isinstance(bound, tuple | list):
        return f"[{bound[0]:.4g}, {bound[1]:.4g}]"
    return f"{bound:.4g}"


def outcome_table(outcome: RetrainOutcome) -> Table:
    """One retrain: each gate's value, bound and verdict, titled with the result."""
    verdict = "[green]promoted to champion[/]" if outcome.promoted else "[yellow]refused[/]"
    table = Table(title=f"{outcome.dataset} as of {outcome.as_of}: version {outcome.version} {verdict}")
    for col in ("gate", "value", "bound", "verdict", "reason"):
        table.add_column(col, no_wrap=col != "reason")
    for g in outcome.decision.gates:
        table.add_row(g.name, f"{g.value:.4g}", _bound(g.bound), _verdict(g), g.reason)
    return table


def _verdict(gate: GateResult) -> str:
    return "[green]pass[/]" if gate.passed else "[red]fail[/]"


def outcome_lines(outcome: RetrainOutcome) -> list[str]:
    """Where the rows went and how training started."""
    r = outcome.rows
    return [
        f"{outcome.start}; window {r['window']:,} rows read: {r['alerted_dropped']:,} alerted dropped, "
        f"{r['validated']:,} validated, {r['quarantined']:,} quarantined; {r['sampled']:,} sampled: "
        f"{r['train']:,} train, {r['calibration']:,} calibrate, {r['evaluation']:,} compare",
        f"run {outcome.run_id}"
        + ("" if outcome.promoted else f"; refused: {'; '.join(outcome.decision.reasons)}"),
    ]


def backtest_table(steps: list[ReplayStep]) -> Table:
    """One row per replayed day: the version it registered, its verdict and what decided it."""
    table = Table(title="retraining replayed on a scratch copy")
    for col in ("as of", "version", "verdict", "start", "why"):
        table.add_column(col, no_wrap=col != "why")
    colour = {"promoted": "green", "refused": "yellow", "no candidate": "red"}
    for step in steps:
        out = step.outcome
        why = (step.stopped or "") if out is None else "; ".join(out.decision.reasons) or "every gate passed"
        version, start = ("-", "-") if out is None else (out.version, out.start)
        verdict = f"[{colour[step.verdict]}]{step.verdict}[/]"
        table.add_row(step.as_of.isoformat(), version, verdict, start, escape(why))
    return table


def backtest_lines(steps: list[ReplayStep], tracking_uri: str, champion: str | None) -> list[str]:
    """Where the replay started, how often each verdict came, which gates refused, where its registry is."""
    counts = Counter(step.verdict for step in steps)
    failed = Counter(
        gate.name
        for step in steps
        if step.outcome is not None
        for gate in step.outcome.decision.gates
        if not gate.passed
    )
    refusals = ", ".join(f"{name} {n}" for name, n in failed.most_common()) or "none"
    start = "a cold start" if champion is None else f"version {champion} of the real registry (v1 here)"
    return [
        f"started from {start}",
        f"{len(steps)} retrain(s): {counts['promoted']} promoted, {counts['refused']} refused, "
        f"{counts['no candidate']} without a candidate; failed gates: {refusals}",
        f"the replay's runs and versions: mlflow ui --backend-store-uri {tracking_uri}",
    ]


def history_table(model: str, entries: list[LedgerEntry]) -> Table:
    """The promotion ledger: one row per champion move, oldest first."""
    table = Table(title=f"champion moves of {model}")
    for col in ("at (UTC)", "action", "champion", "replaced", "state"):
        table.add_column(col, no_wrap=True)
    table.add_column("note", overflow="fold")  # run ids stay whole
    colour = {"done": "green", "unconfirmed": "yellow", "failed": "red"}
    for e in entries:
        state = f"[{colour[e.state]}]{e.state}[/]"
        at = e.at.strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(at, e.action, e.champion, e.replaced or "-", state, escape(e.note))
    return table


def settings_table(rows: list[tuple[str, Any, str]], resolved: dict[str, str]) -> Table:
    """Every setting with its value and origin (defaults dimmed), then what the defaults resolve to here."""
    table = Table(title="settings in effect")
    table.add_column("setting", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("from", no_wrap=True)
    for name, value, origin in rows:
        style = "dim" if origin == "default" else "bold"
        table.add_row(name, escape(json.dumps(value)), origin, style=style)
    table.add_section()
    for name, value in resolved.items():
        table.add_row(name, escape(value), "resolved")
    return table


def alias_line(entry: dict[str, Any] | None) -> str:
    """A champion or previous version in one line: threshold and the 95% range of its realized FPR."""
    if entry is None:
        return "none"
    interval = entry["fpr_interval_95"]
    fpr = "" if interval is None else ", false-positive rate 95% range {:.2%}-{:.2%}".format(*interval)
    return f"version {entry['version']}, threshold {entry['threshold']:.4g}{fpr}"


def status_table(status: dict[str, Any]) -> Table:
    """Every registered version with its gate verdicts; champion and previous marked."""
    marks = {(status[a] or {}).get("version"): a for a in ("previous", "champion")}
    table = Table(title=f"registered model {status['model']}")
    for col in ("version", "alias", "promoted", "gates"):
        table.add_column(col)
    for v in status["versions"]:
        gates = ", ".join(f"{name} {'pass' if g['passed'] else 'FAIL'}" for name, g in v["gates"].items())
        promoted = "yes" if v["promoted"] else "no"
        if v["override"]:
            promoted += f" ({'by hand' if v['promoted'] else 'override attempted'}: {v['override']})"
        table.add_row(v["version"], marks.get(v["version"], ""), promoted, gates)
    return table


def monitor_table(outcome: MonitorOutcome) -> Table:
    """One monitor run: each check's value and verdict, titled with the overall verdict."""
    v = outcome.verdict
    verdict = "[red]drift[/]" if v.drifted else "[green]stable[/]"
    table = Table(
        title=f"{outcome.dataset} as of {outcome.as_of}, champion version {outcome.version}: {verdict}"
    )
    for col in ("check", "value", "moved", "reason"):
        table.add_column(col, no_wrap=col != "reason")
    for name, value, moved, reason in v.checks():
        table.add_row(name, value, "[red]yes[/]" if moved else "[green]no[/]", reason)
    return table


def monitor_line(last: dict[str, Any] | None) -> str:
    """The last monitor verdict, for `sentinel status`."""
    if last is None:
        return "last monitor: none yet (run sentinel monitor)"
    return (
        f"last monitor: {last['verdict']} at {last['at']} on version {last['version']} "
        f"({last['dataset']} as of {last['as_of']}): {'; '.join(last['reasons'])}; retrain: {last['trigger']}"
    )


def groups_table(grouping: AlertGrouping) -> Table:
    """The day's alert groups: size, the features that carry their error, score range, example rows."""
    table = Table(title="alert groups (alerts whose reconstruction error lies on the same features)")
    for column in ("group", "rows", "drivers", "score range", "top example"):
        table.add_column(column, no_wrap=column != "drivers")
    from vae.alert_groups import groups_frame  # scikit-learn: only when there are groups to show

    records = grouping.records()
    for g, (_, line) in zip(records, groups_frame(records).iterrows(), strict=True):
        table.add_row(
            str(g["group"]), f"{g['size']:,}", line["drivers"], line["score range"], escape(g["examples"][0])
        )
    alone = int((grouping.labels == -1).sum())
    table.caption = f"{alone:,} alert(s) in no group (one-offs)" if grouping.groups else "no group found"
    return table
