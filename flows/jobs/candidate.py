"""What a retraining candidate is made of: its training data split by time, and its record for the registry.

Example:
    >>> data = TrainingData(holdout_split(sample, holdout_days=1, seed=0), None, cols, scanned.data_hash)
    >>> record = candidate_record(detector, data, scores, comparison, report, summary, settings, files, None)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from prefect.runtime import flow_run

from flows.adapters.manifest import run_manifest
from flows.adapters.registry import CandidateRecord, LoadedVersion
from flows.jobs.plots import ScorePanel, latent_scatter, score_distribution
from flows.settings import Settings
from vae import Segments, VAEDetector
from vae.latent_map import latent_map
from vae.splits import HoldoutSplit
from validation.checks import ValidationReport
from validation.contracts import DataContract
from validation.gates import Decision, ModelMetrics

HOLDOUT, SHADOW = "holdout normal", "known anomalies"  # the pools a candidate's scores are grouped in


@dataclass(frozen=True)
class TrainingData:
    """A candidate's rows: time split, known anomalies, feature columns, the detector's steps per sample."""

    split: HoldoutSplit
    shadow: pd.DataFrame | None
    names: tuple[str, ...]
    data_hash: str  # identifies the clean window the sample was drawn from
    window: int = 1

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The feature columns of `frame`, in contract order."""
        return frame[list(self.names)]

    def samples(self, frame: pd.DataFrame) -> pd.DataFrame | Segments:
        """What the detector takes: the feature rows, or for window > 1 runs of consecutive lake rows.

        Rows are consecutive when they come from the same file with `_row` one apart, so no window spans
        a quarantined or alerted row, or two files.
        """
        if self.window == 1 or "_row" not in frame:
            return self.features(frame)
        breaks = (frame["_source"] != frame["_source"].shift()) | (frame["_row"].diff() != 1)
        return Segments(self.features(run) for _, run in frame.groupby(breaks.cumsum(), sort=False))

    @property
    def clean(self) -> pd.DataFrame:
        """Every row the candidate saw (train, calibration, evaluation)."""
        return pd.concat([self.split.train, self.split.calibration, self.split.evaluation])


@dataclass(frozen=True)
class Comparison:
    """Candidate and champion measured on the same holdout, and the gates' decision."""

    candidate: ModelMetrics
    champion: ModelMetrics | None
    decision: Decision

    def metrics(self) -> dict[str, float]:
        """Flat metrics, prefixed candidate_ / champion_."""
        out = {f"candidate_{k}": v for k, v in asdict(self.candidate).items() if v is not None}
        champion = asdict(self.champion) if self.champion else {}
        return out | {f"champion_{k}": v for k, v in champion.items() if v is not None}


@dataclass(frozen=True)
class WindowSummary:
    """Which window a candidate was trained on, how it started, and where the rows went."""

    dataset: str
    as_of: date
    window_days: int
    start: str
    rows: dict[str, int]
    trigger: str  # why this run started: "manual", "schedule", or the drift verdict that triggered it


def candidate_record(
    candidate: VAEDetector,
    data: TrainingData,
    scores: dict[str, np.ndarray],
    comparison: Comparison,
    report: ValidationReport,
    window: WindowSummary,
    settings: Settings,
    files: dict[str, Path],
    champion: tuple[LoadedVersion, dict[str, np.ndarray]] | None,
) -> CandidateRecord:
    """Everything the registry logs about a candidate, including the contract derived from its rows.

    `scores` are the candidate's scores by pool (HOLDOUT, and SHADOW when there is a shadow set);
    `champion` is the champion with its scores on the same rows, plotted beside the candidate's.
    """
    contract = DataContract.derive(data.clean, settings.retrain.contract.range_tolerance, data.names)
    summary = {**asdict(window), "as_of": window.as_of.isoformat(), "hash": data.data_hash}
    gates = [asdict(g) for g in comparison.decision.gates]
    manifest = run_manifest(candidate, summary, gates, settings.detector.seed, settings.detector.device)
    described = manifest["detector"]  # threshold, alpha and FPR range, computed once for both records
    fpr_low, fpr_high = described["fpr_interval_95"]
    metrics = comparison.metrics() | {
        "candidate_threshold": described["threshold"],
        "candidate_alpha": described["alpha"],
        "candidate_fpr_low95": fpr_low,
        "candidate_fpr_high95": fpr_high,
    }
    metrics |= {f"rows_{k}": float(v) for k, v in window.rows.items()}
    params = {f"detector.{k}": v for k, v in _flatten(settings.detector.model_dump()).items()}
    params |= {"dataset": window.dataset, "as_of": summary["as_of"], "window_days": window.window_days}
    params |= {f"gates.{k}": v for k, v in settings.retrain.gates.model_dump().items()}
    panels = [ScorePanel("candidate", scores, candidate.threshold_)]
    if champion is not None:
        loaded, champion_scores = champion
        title = f"champion v{loaded.version}, same rows"
        panels.append(ScorePanel(title, champion_scores, loaded.detector.threshold_))
    figures = {
        "score_distribution.png": score_distribution(*panels),
        "latent_map.png": latent_figure(candidate, data, settings),
    }
    return CandidateRecord(
        detector=candidate,
        contract=contract,
        decision=comparison.decision,
        params=params,
        metrics=metrics,
        tags={
            "dataset": window.dataset,
            "start": window.start,
            "trigger": window.trigger,
            "window_hash": summary["hash"],
            "code_hash": manifest["code_hash"],
            "device": manifest["device"],
            "prefect_flow_run": str(flow_run.id or ""),  # which run of the flow made it (none: a plain call)
        },
        input_example=data.features(data.split.evaluation).head(max(5, data.window)),  # a full window
        texts={
            "window.json": json.dumps(summary, indent=2),
            "contract.json": contract.model_dump_json(indent=2),
            "validation.json": json.dumps(report.gx_result, default=str),
            "gate_report.json": json.dumps(gates, indent=2),
            "manifest.json": json.dumps(manifest, indent=2, default=str),
        },
        figures=figures,
        files=files,
    )


def latent_figure(candidate: VAEDetector, data: TrainingData, settings: Settings) -> Figure:
    """The candidate's latent map: its training rows against its known anomalies (when there are any)."""
    train = candidate.latent_means(data.samples(data.split.train))
    shadow = candidate.latent_means(data.samples(data.shadow)) if data.shadow is not None else train[:0]
    review = settings.review
    points = latent_map(train, shadow, None, review.map_method, review.map_points, settings.detector.seed)
    return latent_scatter(points, "Candidate: training rows vs known anomalies", "known anomalies")


def save_reference(
    candidate: VAEDetector, data: TrainingData, folder: Path, max_rows: int, seed: int
) -> Path:
    """The version's reference snapshot for drift monitoring: sampled training rows and calibration scores.

    Returns the folder holding rows.parquet (features) and scores.parquet (held-out normal scores).
    """
    train = data.features(data.split.train)
    sample = train.sample(min(len(train), max_rows), random_state=seed)
    folder.mkdir(parents=True, exist_ok=True)
    sample.to_parquet(folder / "rows.parquet", index=False)
    pd.DataFrame({"score": candidate.calibration_scores_}).to_parquet(folder / "scores.parquet", index=False)
    return folder


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        out |= _flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v}
    return out
