"""`sentinel evaluate`: fit the detector on real labelled datasets shipped in `data/` and report how it does.

Tabular sets: half of the normal rows train (the detector holds out part of them for calibration); the
other half plus every anomaly test. Time series (SKAB's experiments): SKAB's outlier protocol, the first
400 steps of each file train a windowed detector, every later step is flagged or not, and F1, FAR and MAR
are counted over all of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from flows.console.progress import count_bar, epoch_bar
from flows.settings import Settings
from vae import VAEDetector
from vae.datasets import SKAB_GROUPS, find_shipped, load_npz, load_skab, skab_files
from vae.evaluation import (
    EvaluationReport,
    SeriesReport,
    evaluate_scores,
    semi_supervised_split,
    series_metrics,
    series_split,
)


@dataclass(frozen=True)
class DatasetResult:
    """One dataset's outcome."""

    name: str
    n_rows: int
    n_features: int
    epochs: int
    fit_seconds: float
    report: EvaluationReport
    model_dir: Path
    fpr_interval: tuple[float, float]


def run_evaluation(settings: Settings, console: Console) -> list[DatasetResult]:
    """Fit, evaluate and save one detector per configured dataset; print a table; return the results."""
    results = []
    for name in settings.evaluate.datasets:
        data = load_npz(find_shipped(settings.data_dir, name))
        X_train, X_test, y_test = semi_supervised_split(data.X, data.y, settings.evaluate.seed)
        detector = VAEDetector(settings.detector.model_copy(update={"seed": settings.evaluate.seed}))
        started = time.perf_counter()
        with epoch_bar(console, f"fit {name}", settings.detector.train.epochs) as on_epoch:
            detector.fit(X_train, on_epoch=on_epoch)
        seconds = time.perf_counter() - started
        prediction = detector.predict(X_test)
        report = evaluate_scores(prediction.score, prediction.is_anomaly, y_test)
        model_dir = detector.save(settings.home / "evaluate" / name)
        results.append(
            DatasetResult(
                name,
                len(data.X),
                data.X.shape[1],
                len(detector.history_),
                seconds,
                report,
                model_dir,
                detector.fpr_interval(),
            )
        )
        console.print(f"[green]✓[/] {name}: AUROC {report.auroc:.3f}, saved to {model_dir}")
    console.print(results_table(results, settings.detector.target_fpr))
    return results


def results_table(results: list[DatasetResult], target_fpr: float) -> Table:
    """The demo's summary table; "FPR 95% range" is where the calibration predicts "FPR" to land."""
    table = Table(title=f"VAE Sentinel on shipped datasets (threshold calibrated to FPR {target_fpr:.1%})")
    columns = (
        "dataset",
        "rows",
        "cols",
        "epochs",
        "fit s",
        "AUROC",
        "AUPRC",
        "FPR",
        "FPR 95% range",
        "recall",
    )
    for col in columns:
        table.add_column(col, justify="left" if col == "dataset" else "right", no_wrap=True)
    for r in results:
        rep = r.report
        table.add_row(
            r.name,
            f"{r.n_rows:,}",
            str(r.n_features),
            str(r.epochs),
            f"{r.fit_seconds:.1f}",
            f"{rep.auroc:.3f}",
            f"{rep.auprc:.3f}",
            f"{rep.realized_fpr:.2%}",
            "{:.2%}-{:.2%}".format(*r.fpr_interval),
            f"{rep.recall:.1%}",
        )
    return table


def run_series_evaluation(settings: Settings, console: Console) -> dict[str, SeriesReport]:
    """SKAB's protocol on the shipped experiments the settings name; a table by group and overall."""
    cfg = settings.evaluate
    files = skab_files(settings.data_dir / "timeseries" / "skab", cfg.series)
    if not files:
        return {}
    config = settings.detector.model_copy(update={"seed": cfg.seed, "window": cfg.window})
    truth: dict[str, list[np.ndarray]] = {}
    flags: dict[str, list[np.ndarray]] = {}
    with count_bar(console, f"SKAB, windows of {cfg.window}") as on_file:
        for done, path in enumerate(files, start=1):
            series = load_skab(path)
            fit, scored = series_split(len(series.frame))
            detector = VAEDetector(config).fit(series.frame.iloc[fit])
            # the first scored steps' windows reach back into the training part
            prediction = detector.predict(series.frame.iloc[scored.start - cfg.window + 1 :])
            group = path.parent.name
            truth.setdefault(group, []).append(series.labels[scored])
            flags.setdefault(group, []).append(prediction.is_anomaly)
            on_file(done, len(files), series.name)
    reports = {g: series_metrics(np.concatenate(truth[g]), np.concatenate(flags[g])) for g in truth}
    everything = [np.concatenate([np.concatenate(part[g]) for g in truth]) for part in (truth, flags)]
    reports["all"] = series_metrics(*everything)
    console.print(series_table(reports, len(files), cfg.window, settings.detector.target_fpr))
    return reports


def series_table(reports: dict[str, SeriesReport], n_files: int, window: int, target_fpr: float) -> Table:
    """SKAB's F1 / FAR / MAR by group and over every scored step."""
    table = Table(
        title=f"VAE Sentinel on SKAB ({n_files} experiments, windows of {window}, threshold at FPR "
        f"{target_fpr:.1%}; SKAB's best published: Conv-AE F1 0.78, FAR 13.6%, MAR 28.0%)"
    )
    for col in ("group", "steps", "anomalous", "F1", "FAR %", "MAR %"):
        table.add_column(col, justify="left" if col == "group" else "right", no_wrap=True)
    order = [g for g in (*SKAB_GROUPS, "all") if g in reports]
    for group in order:
        r = reports[group]
        share = f"{r.n_anomalous / r.n_steps:.0%}"
        table.add_row(group, f"{r.n_steps:,}", share, f"{r.f1:.3f}", f"{r.far:.1f}", f"{r.mar:.1f}")
    return table
