"""The `retrain` flow: recent clean window, validate, warm-start train, calibrate, gates, promote.

Each task does its I/O through an adapter (lake, registry) and makes one call into the pure core; only
I/O tasks retry. A refused candidate is a normal outcome; a window that fails validation stops the run
before training, with nothing registered.

Example:
    >>> outcome = retrain(dataset="shuttle", as_of=date(2026, 11, 30), settings=Settings())
    >>> outcome.promoted, outcome.decision.reasons
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import psutil
from prefect import flow, get_run_logger

from flows.adapters.connect import lake_of, mapper_of, registry_of
from flows.adapters.lake import Lake, PartitionFile
from flows.adapters.registry import CandidateRecord, LoadedVersion, Registry
from flows.errors import ValidationFailedError
from flows.jobs.candidate import (
    HOLDOUT,
    SHADOW,
    Comparison,
    TrainingData,
    WindowSummary,
    candidate_record,
    save_reference,
)
from flows.jobs.common import day_parameter, io_task, job_settings, load_champion, pure_task, watchers
from flows.jobs.window import SamplePlan, ScannedWindow, derive_contract, require_memory, scan_window
from flows.settings import Settings
from vae import DetectorConfig, ExportError, VAEDetector
from vae.export import SUFFIX
from vae.splits import holdout_split
from vae.training import EpochStats
from validation.checks import ValidationReport
from validation.contracts import DataContract
from validation.gates import Decision, ModelMetrics, promotion_decision


@dataclass(frozen=True)
class RetrainOutcome:
    """What one run did: the version it registered, whether it was promoted and why, and where to look."""

    dataset: str
    as_of: date
    version: str
    run_id: str
    promoted: bool
    decision: Decision
    start: str  # "warm start from version N" or "cold start: <reason>"
    champion_before: str | None
    rows: dict[str, int]
    reason: str  # why the run started: "manual", "schedule", or a drift verdict
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step: lake, validation, training...


# ----------------------------------------------------------------------------------------- tasks
@io_task
def list_window(lake: Lake, dataset: str, as_of: date, days: int) -> tuple[list[PartitionFile], pd.DataFrame]:
    """The window's raw files, and (_source, _row) of its rows the champion flagged."""
    return lake.window_files(dataset, as_of, days), lake.alerted(
        dataset, as_of - timedelta(days=days - 1), as_of
    )


@io_task
def scan(
    lake: Lake,
    files: list[PartitionFile],
    contract: DataContract,
    settings: Settings,
    as_of: date,
    alerted: pd.DataFrame,
) -> ScannedWindow:
    """Read, validate (Great Expectations) and sample the window file by file, here or on Dask."""
    policy, mapper = settings.retrain.contract, mapper_of(settings)
    return scan_window(lake, files, contract, sample_plan(settings), policy, as_of, alerted, mapper)


@io_task
def save_quarantine(lake: Lake, dataset: str, run_id: str, rows: pd.DataFrame) -> str:
    """Write the quarantined rows with their reason; the raw partitions are untouched."""
    return lake.write_quarantine(dataset, run_id, rows)


@pure_task
def train_candidate(
    data: TrainingData,
    config: DetectorConfig,
    warm: VAEDetector | None,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> VAEDetector:
    """Fit a detector on the training days; normalize and calibrate on the calibration half of the holdout."""
    train, calibration = data.samples(data.split.train), data.samples(data.split.calibration)
    return VAEDetector(config).fit(train, X_val=calibration, warm_start=warm, on_epoch=on_epoch)


@pure_task
def export_candidate(
    candidate: VAEDetector, data: TrainingData, folder: Path
) -> tuple[dict[str, Path], float]:
    """ONNX and TorchScript artifacts, checked on evaluation rows; the worst parity (inf if one failed)."""
    files, worst = {}, 0.0
    for fmt, suffix in SUFFIX.items():
        try:
            report = candidate.export(folder / f"model{suffix}", fmt, data.samples(data.split.evaluation))
        except ExportError as exc:
            get_run_logger().warning(str(exc))
            worst = math.inf
            continue
        files[fmt] = report.path
        worst = max(worst, report.relative_diff)
    return files, worst


@io_task
def load_shadow(lake: Lake, dataset: str, key: str | None) -> pd.DataFrame | None:
    """Known anomalies (never trained on), when a shadow set is configured."""
    return None if key is None else lake.read_table(f"{dataset}/{key}")


@pure_task
def measure(detector: VAEDetector, data: TrainingData) -> tuple[ModelMetrics, dict[str, np.ndarray]]:
    """Holdout loss, alert rate on evaluation rows and recall on the shadow set, for one model.

    Also returns the scores they come from: the evaluation rows, and known anomalies when there are some.
    """
    X = data.samples(data.split.evaluation)
    scores = {HOLDOUT: detector.score(X)}
    if data.shadow is not None:
        scores[SHADOW] = detector.score(data.samples(data.shadow))
    flagged = {pool: float((s > detector.threshold_).mean()) for pool, s in scores.items()}
    return ModelMetrics(detector.holdout_loss(X), flagged[HOLDOUT], flagged.get(SHADOW)), scores


@io_task
def settle_moves(registry: Registry) -> None:
    """Settle champion moves a dead process left part-way (`Registry.reconcile`) before reading one."""
    for entry in registry.reconcile():
        get_run_logger().warning(f"{entry.action} v{entry.champion}: {entry.note} -> {entry.state}")


@io_task
def register(registry: Registry, record: CandidateRecord, run_name: str) -> tuple[str, str]:
    """Log the candidate run and register its version; a retry finds what an earlier attempt registered."""
    return registry.log_candidate(record, run_name)


@io_task
def promote(registry: Registry, version: str, expected_champion: str | None, note: str) -> None:
    """Move the champion alias to `version` if the champion is still the one this run started from."""
    registry.promote(version, expected_champion, note)


# ------------------------------------------------------------------------------------------ flow
@flow(name="retrain", validate_parameters=False)
def retrain(
    settings: Settings | None = None,
    dataset: str | None = None,
    as_of: date | None = None,
    window_days: int | None = None,
    reason: str = "manual",
) -> RetrainOutcome:
    """Retrain on the recent clean window and promote the candidate only if every gate passes.

    Each training epoch goes to the command's `watchers().on_epoch`, if any (a progress bar).

    Args:
        settings: the configuration (default: read here, from sentinel.toml and SENTINEL_* variables,
            which is what a scheduled run on a worker does).
        dataset: dataset folder in the lake (default: settings.retrain.dataset).
        as_of: the window's last day (default: today).
        window_days: days in the window (default: settings.retrain.window_days).
        reason: why this run started (e.g. the drift verdict that triggered it); tagged `trigger` on the run.

    Raises:
        ValidationFailedError: the window failed a batch-level expectation (nothing is registered).
        PromotionConflictError: the champion changed while this run trained.
    """
    settings = job_settings(settings)
    as_of = day_parameter(as_of)
    cfg = settings.retrain
    dataset, as_of, window_days = (
        dataset or cfg.dataset,
        as_of or date.today(),
        window_days or cfg.window_days,
    )
    run_id = f"{as_of.isoformat()}-{uuid.uuid4().hex[:8]}"
    lake, registry = lake_of(settings), registry_of(settings)
    clock = Stopwatch()
    with clock("registry"):
        settle_moves(registry)
        champion = load_champion(registry)
    with clock("lake"):
        parts, alerted = list_window(lake, dataset, as_of, window_days)
        shadow = load_shadow(lake, dataset, cfg.shadow_key)
    with clock("validation"):
        contract = contract_for(lake, parts, champion, settings)
    require_memory(parts, len(contract.names), sample_plan(settings), memory_limit(settings))
    scanned = scan(lake, parts, contract, settings, as_of, alerted)
    clock.add(scanned.seconds)
    report = scanned.report
    with clock("lake"):
        if len(scanned.quarantined):
            save_quarantine(lake, dataset, run_id, scanned.quarantined)
    if not report.passed:
        saved = write_report(settings, dataset, run_id, "validation.json", report.gx_result)
        stop(report, f"window {dataset} to {as_of}", saved)
    data = TrainingData(
        holdout_split(
            scanned.sample, cfg.holdout_days, settings.detector.seed, in_order=settings.detector.window > 1
        ),
        shadow,
        contract.names,
        scanned.data_hash,
        settings.detector.window,
    )
    warm, start = warm_start_source(champion, contract.names, settings.detector)
    with clock("training"):
        candidate = train_candidate(data, settings.detector, warm, watchers().on_epoch)
    with clock("export"):
        exports, parity = export_candidate(candidate, data, settings.home / "exports" / run_id)
        reference = save_reference(
            candidate,
            data,
            settings.home / "exports" / run_id / "reference",
            cfg.reference_rows,
            settings.detector.seed,
        )
        files = {f"export/{path.name}": path for path in exports.values()}
        files |= {f"reference/{path.name}": path for path in sorted(reference.iterdir())}
    with clock("evaluation"):
        cand_metrics, cand_scores = measure(candidate, data)
        cand_metrics = replace(cand_metrics, export_parity=parity)
        champ_metrics, champ_scores = (None, {}) if champion is None else measure(champion.detector, data)
        decision = promotion_decision(cand_metrics, champ_metrics, cfg.gates, settings.detector.target_fpr)
        split = data.split
        rows = {"window": scanned.rows["read"]} | {k: v for k, v in scanned.rows.items() if k != "read"}
        rows |= {
            "train": len(split.train),
            "calibration": len(split.calibration),
            "evaluation": len(split.evaluation),
        }
        summary = WindowSummary(dataset, as_of, window_days, start, rows, reason)
        comparison = Comparison(cand_metrics, champ_metrics, decision)
        beside = None if champion is None else (champion, champ_scores)
        record = candidate_record(
            candidate, data, cand_scores, comparison, report, summary, settings, files, beside
        )
    expected = None if champion is None else champion.version
    with clock("registry"):
        run, version = register(registry, record, f"{dataset}-{as_of.isoformat()}")
        if decision.promote:
            promote(
                registry, version, expected, f"every gate passed: retrain as of {as_of} ({reason}), run {run}"
            )
    return RetrainOutcome(
        dataset, as_of, version, run, decision.promote, decision, start, expected, rows, reason, clock.seconds
    )


class Stopwatch:
    """Seconds spent per named step; a step may be timed in several pieces."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        """Add the time spent inside the block to `name`."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add({name: time.perf_counter() - started})

    def add(self, seconds: dict[str, float]) -> None:
        """Add seconds measured elsewhere (e.g. by the workers that scanned the window)."""
        for name, spent in seconds.items():
            self.seconds[name] = self.seconds.get(name, 0.0) + spent


# --------------------------------------------------------------------------------------- helpers
def contract_for(
    lake: Lake, files: list[PartitionFile], champion: LoadedVersion | None, settings: Settings
) -> DataContract:
    """A hand-edited contract file if configured, else the champion's, else one derived from this window."""
    if settings.retrain.contract_file is not None:
        return DataContract.model_validate_json(settings.retrain.contract_file.read_text())
    if champion is not None:
        return champion.contract
    return derive_contract(lake, files, settings.retrain.contract.range_tolerance, mapper_of(settings))


def sample_plan(settings: Settings) -> SamplePlan:
    """The sample a candidate trains on: `retrain.sample_rows`, in blocks of 4 windows for windowed models."""
    window = settings.detector.window
    return SamplePlan(settings.retrain.sample_rows, 1 if window == 1 else 4 * window, settings.detector.seed)


def memory_limit(settings: Settings) -> float:
    """Bytes a retrain may plan for: `retrain.memory_limit_gb`, else 80% of the memory available now."""
    limit = settings.retrain.memory_limit_gb
    return limit * 1e9 if limit is not None else 0.8 * psutil.virtual_memory().available


def warm_start_source(
    champion: LoadedVersion | None, names: tuple[str, ...], config: DetectorConfig
) -> tuple[VAEDetector | None, str]:
    """The champion's detector when it can seed training, with the reason either way."""
    if champion is None:
        return None, "cold start: no champion yet"
    if champion.contract.names != names:
        return None, f"cold start: champion v{champion.version} has other columns"
    if (champion.detector.config.model, champion.detector.config.window) != (config.model, config.window):
        return None, f"cold start: model settings or window differ from champion v{champion.version}"
    return champion.detector, f"warm start from v{champion.version}"


def stop(report: ValidationReport, window: str, saved: Path) -> NoReturn:
    """End the run on a failed window: a one-line reason, with the full summary attached."""
    first = "; ".join(str(f) for f in report.batch_failures[:2])
    message = f"{window} failed validation ({first}); GX result: {saved}"
    raise ValidationFailedError(message, report.summary())


def write_report(settings: Settings, dataset: str, run_id: str, name: str, content: dict[str, Any]) -> Path:
    """Save a report under HOME/reports/DATASET/RUN/ (used when there is no MLflow run to hold it)."""
    path = settings.home / "reports" / dataset / run_id / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2, default=str))
    return path
