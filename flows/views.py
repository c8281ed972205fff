"""Terminal views of flow results: gate tables, registry status."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from flows.monitor import MonitorOutcome
from flows.retrain import RetrainOutcome
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
        f"{outcome.start}; window {r['window']:,} rows: {r['alerted_dropped']:,} alerted and "
        f"{r['quarantined']:,} quarantined dropped; {r['train']:,} train, {r['calibration']:,} calibrate, "
        f"{r['evaluation']:,} compare",
        f"run {outcome.run_id}"
        + ("" if outcome.promoted else f"; refused: {'; '.join(outcome.decision.reasons)}"),
    ]


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
            promoted += f" (by hand: {v['override']})"
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
