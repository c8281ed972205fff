"""The `sentinel` command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import date, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from flows import runtime
from flows.errors import NoChampionError, SettingsError, ValidationFailedError
from flows.settings import LakeSettings, RegistrySettings, Settings, described, load_settings
from vae.errors import SentinelError

app = typer.Typer(
    help="VAE Sentinel: a VAE anomaly detector that keeps itself calibrated and current.\n\n"
    "Configuration comes from sentinel.toml, then SENTINEL_* environment variables "
    "(nested with __, e.g. SENTINEL_DETECTOR__TARGET_FPR=0.005, SENTINEL_LAKE__ROOT=s3://bucket/lake).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
console = Console(soft_wrap=True)  # long lines (commands, paths) stay whole in logs and copies
REPO = Path(__file__).resolve().parents[1]


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"vae-sentinel {version('vae-sentinel')}")
        raise typer.Exit


@app.callback()
def main(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """VAE Sentinel command line."""


@app.command()
def demo() -> None:
    """Seed a local lake from a real shipped dataset and run the retraining flow as of successive days.

    Writes day partitions of the shipped mammography set (normal rows; its anomalies become the shadow
    set), then retrains three times: a first champion (cold start), a warm-started candidate that is
    promoted, and a candidate trained on a window where a sensor failed, which the gates refuse. Then it
    scores the failing day (alerts grouped by cause), checks it for drift and writes its review page.
    Each run uses the embedded default in a fresh folder SENTINEL_HOME/demo/<time>/ (lake, MLflow SQLite,
    reports), whatever the stack settings say; nothing earlier is touched.
    """
    settings = _settings(configure=False)  # configured below, for the demo's own folder
    home = settings.home / "demo" / datetime.now().strftime("%Y%m%d-%H%M%S")
    # The demo always runs on the embedded default, inside its own folder, whatever the stack settings say.
    embedded = {"home": home, "lake": LakeSettings(), "registry": RegistrySettings(), "prefect_api_url": None}
    _guard(lambda: _run_demo(settings.model_copy(update=embedded)))


def _run_demo(settings: Settings) -> None:
    from flows.adapters.connect import lake_of
    from flows.console.demo import SHADOW_KEY, demo_data, demo_steps, seed_lake

    runtime.configure(settings)
    dataset = settings.demo.dataset
    settings = settings.model_copy(
        update={"retrain": settings.retrain.model_copy(update={"dataset": dataset, "shadow_key": SHADOW_KEY})}
    )
    lake = lake_of(settings)
    dates = seed_lake(
        lake, demo_data(settings), dataset, settings.demo.days, date.today(), settings.demo.seed
    )
    console.print(
        f"seeded {lake.store.uri}/{dataset}: {len(dates)} day partitions, {dates[0]} to {dates[-1]}"
    )
    for i, step in enumerate(demo_steps(dates), start=1):
        console.rule(f"run {i}: retrain as of {step.as_of} (expect: {step.expect})")
        _run_retrain(settings, dataset, step.as_of, None)
    for day in dates[-4:-1]:
        expect = "alerts grouped on s01, the failing sensor" if day == dates[-2] else "about 1% alerts"
        console.rule(f"score {day} with the champion (expect: {expect})")
        _run_score(settings, dataset, day)
    console.rule(
        f"monitor as of {dates[-2]} (expect: drift in s01, which starts a retrain; its gates decide)"
    )
    _run_monitor(settings, dataset, dates[-2])
    console.rule(f"review page of {dates[-2]}")
    _run_report(settings, dataset, dates[-2])
    uri = settings.tracking_uri()
    first_full = dates[0] + timedelta(days=settings.retrain.window_days - 1)  # first day with a full window
    console.print(
        "\nwhere to look:\n"
        f"  mlflow ui --backend-store-uri {uri}        # runs, metrics, score plots, registered versions\n"
        f"  SENTINEL_HOME={settings.home} sentinel status   # champion, previous, gates, last drift verdict\n"
        f"  SENTINEL_HOME={settings.home} sentinel history   # every champion move, when and why\n"
        f"  SENTINEL_HOME={settings.home} sentinel backtest --dataset {dataset} --from {first_full}"
        "   # replay retrains, e.g. with other gate bounds\n"
        f"  {settings.lake_root()}/{dataset}/_quarantine/   # rows that failed validation, with reasons\n"
        f"  evidently ui --workspace {settings.home / 'evidently'}   # drift over time, a project per dataset"
    )


@app.command()
def retrain(
    dataset: str = typer.Option(None, help="Dataset folder in the lake (default: settings.retrain.dataset)."),
    as_of: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Last day of the window, YYYY-MM-DD (default: today)."),
    ] = None,
    window_days: int = typer.Option(None, min=2, help="Days in the window (default: settings)."),
) -> None:
    """Retrain on the recent clean window; promote the candidate only if every gate passes.

    Loads the window's day partitions, drops rows the champion flagged, validates the rest against the
    data contract (bad rows are quarantined; a bad window stops here, exit 1), warm-starts from the
    champion, calibrates on the newest day, compares candidate and champion on the same holdout, and
    registers the candidate. A refused candidate is a normal outcome: exit 0, reasons printed.
    """
    settings = _settings()
    _guard(lambda: _run_retrain(settings, dataset, as_of.date() if as_of else None, window_days))


def _preflight(settings: Settings, dataset: str | None) -> tuple[str, list[date]]:
    """The dataset a flow command works on (default: settings.retrain.dataset) and its partition days.

    Refused at once, before a flow (and a temporary Prefect server) starts, when the configured Prefect
    API does not answer or the lake has no partition of the dataset.
    """
    from flows.adapters.connect import lake_of

    runtime.check_prefect_api(settings)
    name = dataset or settings.retrain.dataset
    return name, lake_of(settings).require_days(name)


def _run_retrain(
    settings: Settings, dataset: str | None, as_of: date | None, window_days: int | None
) -> None:
    dataset, _ = _preflight(settings, dataset)
    from flows.console.progress import epoch_bar
    from flows.console.views import outcome_lines, outcome_table
    from flows.jobs.common import Watchers, watching
    from flows.jobs.retrain import retrain as retrain_flow

    console.print("retraining: load and validate the window, train, compare, register", highlight=False)
    bar = epoch_bar(console, "training", settings.detector.train.epochs)
    with bar as on_epoch, watching(Watchers(on_epoch=on_epoch)):
        outcome = retrain_flow(settings=settings, dataset=dataset, as_of=as_of, window_days=window_days)
    console.print(outcome_table(outcome))
    for line in outcome_lines(outcome):
        console.print(line, highlight=False)


@app.command()
def backtest(
    start: Annotated[
        datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First day to retrain as of, YYYY-MM-DD.")
    ],
    end: Annotated[
        datetime | None,
        typer.Option("--to", formats=["%Y-%m-%d"], help="Last day, YYYY-MM-DD (default: newest partition)."),
    ] = None,
    every: int = typer.Option(1, min=1, help="Days between replayed retrains: the cadence to try."),
    dataset: str = typer.Option(None, help="Dataset folder in the lake (default: settings.retrain.dataset)."),
    champion: str = typer.Option(
        None,
        help="Version of the real registry to start from (default: a cold start), or 'auto': the one that "
        "served going into --from (made champion, not rolled back, trained on a window ending before "
        "--from). It becomes version 1 of the replay's registry.",
    ),
) -> None:
    """Replay retraining over past days on a scratch copy; show what each run would have decided.

    Runs the real retrain flow as of --from, --from + --every days, ... up to --to, with the current
    settings (try other gate bounds or a window length with SENTINEL_RETRAIN__* variables). The span's
    partitions are copied into SENTINEL_HOME/backtest/<time>/ with its own SQLite registry: the real lake
    and registry are only read. The first day trains a cold start, or warm-starts from --champion and is
    gated against it; each later one warm-starts from the replay's champion. A window that fails
    validation is shown and the replay goes on.
    """
    settings = _settings()
    _guard(
        lambda: _run_backtest(settings, dataset, start.date(), end.date() if end else None, every, champion)
    )


def _run_backtest(
    settings: Settings, dataset: str | None, start: date, end: date | None, every: int, champion: str | None
) -> None:
    dataset, held = _preflight(settings, dataset)
    from flows.adapters.connect import registry_of
    from flows.console.progress import count_bar
    from flows.console.views import backtest_lines, backtest_table
    from flows.jobs.backtest import replay, replay_days, scratch_settings

    days = replay_days(start, end or held[-1], every)
    if champion == "auto":
        champion = registry_of(settings).serving_before(days[0], dataset)
        chosen = f"version {champion}" if champion else "none (no version was trained before it)"
        console.print(f"serving going into {days[0]}: {chosen}", highlight=False)
    folder = settings.home / "backtest" / datetime.now().strftime("%Y%m%d-%H%M%S")
    console.print(f"replaying {len(days)} retrain(s) of {dataset}, {days[0]} to {days[-1]}", highlight=False)
    with count_bar(console, "days replayed") as on_day:
        steps = replay(settings, dataset, days, folder, champion, on_day)
    console.print(backtest_table(steps))
    for line in backtest_lines(steps, scratch_settings(settings, folder).tracking_uri(), champion):
        console.print(line, highlight=False)


@app.command()
def monitor(
    dataset: Annotated[
        str | None, typer.Option(help="Dataset folder in the lake (default: settings).")
    ] = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Last day of the window, YYYY-MM-DD (default: newest)."),
    ] = None,
) -> None:
    """Check the newest window for drift against the champion's reference; on drift, start a retrain.

    Three checks, one verdict: feature drift (Evidently KS p-value, Bonferroni-corrected over features,
    and normalized Wasserstein >= monitor.drift.effect_floor std, both needed), score drift (the champion's
    scores on the window against its calibration scores: KS p-value and KS >= monitor.drift.ks_floor) and
    alert volume (flagged share above the target FPR, a beta-binomial test that allows for the size of the
    calibration set). Windows above monitor.drift.max_sample rows are sampled; the table shows the
    sampling error bound. The report (Evidently HTML, score histogram, JSON) goes to
    SENTINEL_HOME/reports/ and to MLflow. A drift verdict
    starts `retrain` unless one ran within monitor.trigger.cooldown_hours or the cap per period is used;
    the retrain's gates still decide what is promoted. Exit 0 whatever the verdict; 1 on bad input.
    """
    settings = _settings()
    _guard(lambda: _run_monitor(settings, dataset, as_of.date() if as_of else None))


def _run_monitor(settings: Settings, dataset: str | None, as_of: date | None) -> None:
    dataset, _ = _preflight(settings, dataset)
    from flows.console.views import monitor_table
    from flows.jobs.monitor import monitor as monitor_flow

    with console.status("checking the window for drift..."):
        outcome = monitor_flow(settings=settings, dataset=dataset, as_of=as_of)
    console.print(monitor_table(outcome))
    console.print(
        f"report: {outcome.report_dir}/features.html (MLflow run {outcome.run_id})", highlight=False
    )
    if outcome.trigger is not None:
        console.print(
            f"retrain: {outcome.retrain or 'not started'} ({outcome.trigger.reason})", highlight=False
        )


@app.command()
def deploy(
    work_pool: Annotated[
        str | None,
        typer.Option(
            help="An existing Prefect work pool (process, docker, kubernetes) whose workers run both flows. "
            "Without it this process serves both deployments itself (blocks; Ctrl-C stops)."
        ),
    ] = None,
    monitor_work_pool: Annotated[
        str | None, typer.Option(help="Work pool for monitor runs (default: --work-pool), e.g. CPU workers.")
    ] = None,
    retrain_cron: Annotated[
        str, typer.Option(help="When to retrain, cron (UTC; an optional sixth field is seconds).")
    ] = "0 3 * * *",
    monitor_cron: Annotated[
        str, typer.Option(help="When to check for drift, cron (UTC; an optional sixth field is seconds).")
    ] = "0 * * * *",
    dataset: Annotated[
        str | None, typer.Option(help="Dataset folder (default: settings, where runs run).")
    ] = None,
    source: Annotated[
        Path, typer.Option(help="This code's folder as workers see it (with --work-pool).")
    ] = REPO,
) -> None:
    """Create scheduled deployments retrain/MODEL (daily) and monitor/MODEL (hourly) on the Prefect server.

    Needs a Prefect server (SENTINEL_PREFECT_API_URL; `prefect server start` or infra/local-stack.sh): the
    temporary local one cannot schedule. retrain/MODEL has a concurrency limit of 1, so at most one retrain
    per model runs at a time; monitor/MODEL starts drift-triggered retrains through it. Each run reads its
    settings where it runs, from sentinel.toml and SENTINEL_* variables; on a GPU worker training uses CUDA.
    """
    settings = _settings()

    def run() -> None:
        if not settings.prefect_api_url:
            raise SentinelError(
                "scheduling needs a Prefect server: set SENTINEL_PREFECT_API_URL (see infra/)"
            )
        runtime.check_prefect_api(settings)
        from flows.jobs.deployments import Pools, Schedules, crash_silent_runs, deploy_to_pools, to_serve

        model, schedules = settings.registry.model_name, Schedules(retrain_cron, monitor_cron)
        silence = crash_silent_runs(settings.flow_heartbeat_seconds)
        if silence is not None:
            console.print(f"automation: a flow run silent for {silence.seconds} s is marked Crashed")
        if work_pool is None:
            import prefect

            console.print(f"serving retrain/{model} ({retrain_cron}) and monitor/{model} ({monitor_cron})")
            prefect.serve(*to_serve(schedules, model, dataset), pause_on_shutdown=False)
            return
        pools = Pools(work_pool, monitor_work_pool or work_pool)
        for name in deploy_to_pools(schedules, model, dataset, pools, source):
            pool = pools.retrain if name.startswith("retrain") else pools.monitor
            console.print(f"deployment {name} on work pool {pool}")

    _guard(run)


@app.command()
def rollback() -> None:
    """Move the champion alias back to the previous champion."""
    settings = _settings()

    def run() -> None:
        from flows.adapters.connect import registry_of

        registry = registry_of(settings)
        demoted, restored = registry.rollback()
        console.print(f"{registry.model_name}: champion is version {restored} again (was {demoted})")

    _guard(run)


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="Registered version to make the champion.")],
    reason: Annotated[
        str, typer.Option(help="Why the gates are overridden; kept on the version and shown by status.")
    ],
    replacing: Annotated[
        str | None,
        typer.Option(help="Move only if this version is still the champion (as status showed it)."),
    ] = None,
) -> None:
    """Make a registered version the champion by hand, whatever its gates said (a recorded override).

    For a candidate the gates refused for a reason you know to be harmless (a planned sensor change, a
    new operating regime). The reason is required and stays on the version (tags override_reason and
    override_at); the replaced champion becomes previous, so `sentinel rollback` undoes it. A running
    `sentinel serve` follows the alias. With --replacing, a champion moved meanwhile by anyone else stops
    it with nothing moved; every move holds the model's move lock, so concurrent moves never interleave.
    """
    settings = _settings()

    def run() -> None:
        from flows.adapters.connect import registry_of

        registry = registry_of(settings)
        replaced = registry.override(version, reason, replacing)
        was = "none" if replaced is None else f"version {replaced}, now previous"
        console.print(f"{registry.model_name}: champion is version {version} by hand (was {was})")

    _guard(run)


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Show the registered model: champion and previous versions with threshold, and every version's gates.

    --json prints {model, champion, previous, versions}; each version has version, promoted, override
    (the reason of a manual promotion, or null) and gates (gate name -> value, bound, passed, reason).
    """
    settings = _settings()

    def run() -> None:
        from flows.adapters.connect import registry_of
        from flows.console.views import alias_line, monitor_line, status_table

        registry = registry_of(settings)
        report = registry.status() | {"monitor": registry.last_monitor(settings.monitor.experiment)}
        if as_json:
            typer.echo(json.dumps(report, indent=2))
            return
        for alias in ("champion", "previous"):
            console.print(f"{alias}: {alias_line(report[alias])}")
        console.print(monitor_line(report["monitor"]), highlight=False)
        console.print(status_table(report))

    _guard(run)


@app.command()
def history(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """Show every champion move, oldest first: promotions, manual overrides, rollbacks, adoptions.

    Each row has when (UTC), the action, the new champion, the version it replaced, and why (the retrain
    run whose gates passed, or the override's reason). The registry keeps only where an alias points now;
    this ledger is what answers "which version served at that time". An unconfirmed move is in flight
    or its process died before its end was written (the next retrain or move settles it from where the
    aliases point, noting "reconciled"); a failed one raised part-way, or was settled as not landed.
    --json prints [{at, action, champion, replaced, note, state}].
    """
    settings = _settings()

    def run() -> None:
        from flows.adapters.connect import registry_of
        from flows.console.views import history_table

        registry = registry_of(settings)
        entries = registry.promotions()
        if as_json:
            typer.echo(json.dumps([asdict(e) | {"at": e.at.isoformat()} for e in entries], indent=2))
            return
        console.print(history_table(registry.model_name, entries))

    _guard(run)


@app.command()
def config(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Show every setting in effect and where it came from: the environment, sentinel.toml or the default.

    Secrets are masked. The last rows show what the settings resolve to on this machine: the lake root,
    the MLflow tracking URI, the artifact location and the Prefect API. An invalid setting is named in
    one line (exit 1), as in every other command.
    --json prints {settings: {NAME: {value, from}}, resolved: {NAME: VALUE}}.
    """
    settings = _settings(configure=False)
    resolved = {
        "lake root": settings.lake_root(),
        "tracking URI": settings.tracking_uri(),
        "artifact location": settings.artifact_location() or "the tracking server's",
        "Prefect API": settings.prefect_api_url
        or f"a temporary local server (PREFECT_HOME {(settings.home / 'prefect').resolve()})",
    }
    rows = described(settings)
    if as_json:
        named = {name: {"value": value, "from": origin} for name, value, origin in rows}
        typer.echo(json.dumps({"settings": named, "resolved": resolved}, indent=2))
        return
    from flows.console.views import settings_table

    console.print(settings_table(rows, resolved))


@app.command()
def score(
    dataset: Annotated[
        str | None, typer.Option(help="Dataset folder in the lake (default: settings).")
    ] = None,
    day: Annotated[
        datetime | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="Partition to score (default: newest)."),
    ] = None,
) -> None:
    """Score one day of lake partitions with the champion; write scores and alerts back to the lake.

    Scores go to DATASET/_scores/date=DAY/, flagged rows to DATASET/_alerts/date=DAY/ (retrain leaves
    them out of training) with their alert group: alerts whose reconstruction error lies on the same
    features, printed as a table (groups also to DATASET/_groups/date=DAY/). Each file is read and scored
    by a task: in two local threads, or on the Dask cluster at SENTINEL_DASK_ADDRESS, whose workers read
    the files themselves (pip install 'vae-sentinel[dask]'). Raw partitions are not modified; a day
    already scored by the same version is refused rather than overwritten.
    """
    settings = _settings()
    _guard(lambda: _run_score(settings, dataset, day.date() if day else None))


def _run_score(settings: Settings, dataset: str | None, day: date | None) -> None:
    name, _ = _preflight(settings, dataset)
    from flows.console.progress import count_bar
    from flows.console.views import groups_table
    from flows.jobs.common import Watchers, watching
    from flows.jobs.score import score_day

    with count_bar(console, "files scored") as on_file, watching(Watchers(on_step=on_file)):
        outcome = score_day(settings, name, day)
    console.print(
        f"{outcome.dataset} {outcome.day}: {outcome.n_rows:,} rows scored by version {outcome.version}, "
        f"{outcome.n_alerts:,} alerts\n  scores: {outcome.scores_key}\n  alerts: {outcome.alerts_key}",
        highlight=False,
    )
    console.print(groups_table(outcome.groups))


@app.command()
def report(
    dataset: Annotated[
        str | None, typer.Option(help="Dataset folder in the lake (default: settings).")
    ] = None,
    day: Annotated[
        datetime | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="Day to review, YYYY-MM-DD (default: newest)."),
    ] = None,
) -> None:
    """Write the day's review page: one self-contained HTML file a reviewer reads top to bottom.

    The monitor's verdict (drift checks, alert volume against the target, what the trigger did); alert
    volume and score quantiles over review.history_days with champion changes marked; the day's alert
    groups and a latent map of them; a few flagged rows beside their reconstructions; the champion and
    the newest candidates' gates side by side with their scores on the day's rows; links to the Evidently
    report, the MLflow runs and the lake files. Run `sentinel score` (and `sentinel monitor`) for the
    day first. Written to SENTINEL_HOME/reports/DATASET/, logged to MLflow (experiment NAME-review) and
    linked from a Prefect artifact; opens from disk, no server needed.
    """
    settings = _settings()
    _guard(lambda: _run_report(settings, dataset, day.date() if day else None))


def _run_report(settings: Settings, dataset: str | None, day: date | None) -> None:
    name, _ = _preflight(settings, dataset)
    from flows.jobs.report import report as report_flow

    with console.status("gathering the day's verdict, alerts and models..."):
        outcome = report_flow(settings=settings, dataset=name, day=day)
    console.print(f"review of {outcome.dataset} on {outcome.day}: {outcome.page}", highlight=False)
    console.print(f"  logged to MLflow run {outcome.run_id}; open the file in a browser", highlight=False)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default: settings.serve.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings.serve.port).")] = None,
    insecure: Annotated[
        bool, typer.Option(help="Allow a non-loopback host without a token (or serve.insecure).")
    ] = False,
) -> None:
    """Serve the champion over HTTP (FastAPI); follows the champion alias as it moves.

    POST /score takes {"records": [...]}, {"columns": {...}}, or MLflow's {"dataframe_split": ...} and
    {"dataframe_records": [...]}, or an Arrow IPC stream (Content-Type
    application/vnd.apache.arrow.stream); ?explain=true adds per-feature reconstruction contributions. Also
    GET /health, /ready, /metadata, /metrics (Prometheus) and /docs. POST /stream/{stream_id} takes the
    next rows of a series and returns EMA-smoothed scores and flags of each window they complete (state
    kept per stream id; DELETE forgets it). A bearer token is required when SENTINEL_SERVE__TOKEN is set;
    a host other than loopback without one is refused unless --insecure.
    """
    settings = _settings()
    from flows.serving.exposure import require_guarded

    cfg = settings.serve
    host = host or cfg.host
    _guard(lambda: require_guarded(host, cfg.token is not None, insecure or cfg.insecure))
    import torch
    import uvicorn

    from flows.serving.app import create_app

    torch.set_num_threads(cfg.torch_threads)  # small per-request batches: threads only contend
    uvicorn.run(create_app(settings), host=host, port=port or cfg.port, log_level="warning")


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", help="onnx or torchscript.")] = "onnx",
    out: Annotated[Path, typer.Option(help="File to write.")] = Path("model.onnx"),
    version: Annotated[str | None, typer.Option(help="Registered version (default: the champion).")] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset whose newest day checks parity.")] = None,
) -> None:
    """Export a registered detector (preprocessing, scoring and threshold included) to ONNX or TorchScript.

    The artifact is written only if its scores match the detector's on the dataset's newest day (largest
    difference relative to the score scale <= retrain.gates.export_parity_tolerance); it is then also
    logged with the version's MLflow run, under export/.
    """
    settings = _settings()

    def run() -> None:
        from flows.adapters.connect import lake_of, registry_of

        registry = registry_of(settings)
        chosen = version or registry.alias_version("champion")
        if chosen is None:
            raise NoChampionError(registry.model_name)
        loaded = registry.load_version(chosen)
        lake = lake_of(settings)
        name = dataset or settings.retrain.dataset
        rows = lake.read_window(name, lake.newest_day(name), 1)  # the newest day checks parity
        tolerance = settings.retrain.gates.export_parity_tolerance
        report = loaded.detector.export(out, fmt, rows[list(loaded.contract.names)], tolerance)
        registry.log_export(chosen, report.path)
        console.print(
            f"wrote {report.path} ({fmt}, version {chosen}): max |score diff| {report.max_abs_diff:.3g} on "
            f"{report.n_rows:,} rows, {report.relative_diff:.2g} of the score scale (allowed {tolerance:g})"
        )

    _guard(run)


@app.command()
def evaluate(
    seed: int = typer.Option(None, help="Seed of the split and detectors (default: settings)."),
) -> None:
    """Fit the detector on real labelled datasets shipped in data/ and print how it does.

    Tabular sets (evaluate.datasets): half of the normal rows train; the other half plus every anomaly
    test; the table shows AUROC, AUPRC and the false-positive rate realized at the threshold calibrated on
    held-out normal rows; models are saved under SENTINEL_HOME/evaluate/. Time series (evaluate.series,
    SKAB's 34 experiments): SKAB's protocol, the first 400 steps of each file train a detector with
    windows of evaluate.window steps, the rest is flagged; F1, FAR and MAR by group and overall.
    """
    from flows.console.evaluate import run_evaluation, run_series_evaluation

    settings = _settings(configure=False)
    if seed is not None:
        settings = settings.model_copy(
            update={"evaluate": settings.evaluate.model_copy(update={"seed": seed})}
        )
    _guard(lambda: (run_evaluation(settings, console), run_series_evaluation(settings, console)))


stack_app = typer.Typer(
    help="The production topology on this machine, as processes: PostgreSQL (MLflow's and Prefect's "
    "databases), an S3 server (lake and artifacts), the MLflow and Prefect servers, and a process worker "
    "for each of the retrain and monitor pools. Logs and pid files are in HOME/stack; ports and names are "
    "the stack.* settings (sentinel config).",
    no_args_is_help=True,
)
app.add_typer(stack_app, name="stack")


@stack_app.command("up")
def stack_up() -> None:
    """Start every part that is not running and wait until each answers; then print the exports.

    A port already taken or a part that does not answer is a one-line error naming it and its log, and
    the parts this command started are stopped again.
    """
    from flows.stack.parts import exports
    from flows.stack.supervisor import up

    settings = _settings(configure=False)
    _guard(lambda: up(settings, report=lambda line: console.print(line, highlight=False)))
    console.print('Point sentinel at the stack with:  eval "$(sentinel stack env)"', highlight=False)
    for name, value in exports(settings).items():
        console.print(f"export {name}={value}", highlight=False)


@stack_app.command("down")
def stack_down() -> None:
    """Stop every running part of the stack (its data stays in HOME/stack for the next up)."""
    from flows.stack.supervisor import down

    settings = _settings(configure=False)
    _guard(lambda: down(settings, report=lambda line: console.print(line, highlight=False)))


@stack_app.command("status")
def stack_status() -> None:
    """Whether each part answers its health check; exit 1 when one does not."""
    from flows.stack.supervisor import status

    settings = _settings(configure=False)
    health: dict[str, bool] = {}
    _guard(lambda: health.update(status(settings)))
    for name, ok in health.items():
        console.print(f"{name}: {'up' if ok else 'down'}", highlight=False)
    if not all(health.values()):
        raise typer.Exit(1)


@stack_app.command("env")
def stack_env() -> None:
    """The exports that point sentinel, and boto3, at the stack: eval "$(sentinel stack env)"."""
    from flows.stack.parts import exports

    for name, value in exports(_settings(configure=False)).items():
        typer.echo(f"export {name}={value}")


def _guard(action: Callable[[], object]) -> None:
    """Run `action`; a SentinelError becomes a one-line message (after any details) and exit code 1."""
    try:
        action()
    except ValidationFailedError as exc:
        console.print(exc.details, highlight=False)
        _fail(exc)
    except SentinelError as exc:
        _fail(exc)


def _settings(configure: bool = True) -> Settings:
    """The settings in effect, exported to Prefect, MLflow and GX when `configure`; invalid ones exit 1."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        _fail(exc)
    if configure:
        runtime.configure(settings)
    return settings


def _fail(exc: Exception) -> NoReturn:
    console.print(f"[red]error:[/] {exc}", highlight=False)
    sys.exit(1)
