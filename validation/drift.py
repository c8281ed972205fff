"""Did the data or the model's behaviour move? Feature drift, score drift, alert volume; no crying wolf.

Large windows make any test significant, so a shift counts only when it is both significant and large
enough to matter. Features: Evidently's KS p-value (Bonferroni-corrected over the features, so the chance
that *any* feature of a same-distribution window is flagged stays below `p_value`) *and* its normalized
Wasserstein distance (the shift in units of the reference standard deviation, at least `effect_floor`)
must both say so. Scores: the KS statistic (the largest gap between the two empirical CDFs, in [0, 1])
must reach a floor. Samples are capped for speed; by the Dvoretzky-Kiefer-Wolfowitz inequality a sample
of n rows estimates its CDF within sqrt(ln(2/delta) / (2n)) everywhere with probability 1 - delta, which
`ScoreDrift.error_bound` reports.

Example:
    >>> drift = score_drift(calibration_scores, window_scores, DriftPolicy(), seed=0)
    >>> drift.drifted, drift.reason
    >>> feature_drift(reference_rows, window_rows, DriftPolicy()).drifted_columns
    >>> verdict = assess_drift(ref_rows, ref_scores, rows, scores, flags, 0.01, DriftPolicy())
    >>> verdict.drifted, verdict.reasons
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from vae.calibration import conformal_rank, realized_fpr_law


class DriftPolicy(BaseModel):
    """Thresholds of the behaviour checks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    p_value: float = Field(
        0.01, gt=0, lt=1, description="Significance of the two-sample KS tests (family-wise over features)."
    )
    ks_floor: float = Field(
        0.1, gt=0, le=1, description="Smallest KS statistic that counts as drift, whatever the sample size."
    )
    alert_p_value: float = Field(0.001, gt=0, lt=1, description="Significance of the alert-volume test.")
    max_sample: int = Field(50_000, ge=100, description="Rows sampled per side for the KS test.")
    effect_floor: float = Field(
        0.05, gt=0, description="Smallest feature shift that counts, in reference standard deviations."
    )
    confidence: float = Field(0.99, gt=0, lt=1, description="Confidence of the reported CDF error bound.")


@dataclass(frozen=True)
class ScoreDrift:
    """Scores of the window against the reference scores (e.g. the champion's calibration scores)."""

    statistic: float
    p_value: float
    n_reference: int
    n_current: int
    error_bound: float  # largest CDF error from sampling, at the policy's confidence
    drifted: bool
    reason: str


@dataclass(frozen=True)
class AlertVolume:
    """The flagged share of a window against the target FPR (one-sided binomial test)."""

    n_rows: int
    n_alerts: int
    rate: float
    target_fpr: float
    p_value: float
    excessive: bool
    reason: str


@dataclass(frozen=True)
class ColumnDrift:
    """One feature: KS p-value, shift size in reference standard deviations, verdict."""

    column: str
    p_value: float
    effect: float
    drifted: bool


@dataclass(frozen=True)
class FeatureDrift:
    """Per-feature drift of a window against reference rows, and the overall verdict.

    Attributes:
        snapshot: the Evidently snapshot (`save_html`, `dict`), for the report people read.
    """

    columns: tuple[ColumnDrift, ...]
    n_reference: int
    n_current: int
    drifted: bool
    reason: str
    snapshot: Any

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the features that moved."""
        return [c.column for c in self.columns if c.drifted]


def dkw_bound(n: int, confidence: float) -> float:
    """Largest gap between a sample's empirical CDF and the true CDF, with probability `confidence`."""
    return math.sqrt(math.log(2 / (1 - confidence)) / (2 * n))


def _sample(values: np.ndarray, max_n: int, rng: np.random.Generator) -> np.ndarray:
    return values if len(values) <= max_n else rng.choice(values, size=max_n, replace=False)


def score_drift(reference: np.ndarray, current: np.ndarray, policy: DriftPolicy, seed: int = 0) -> ScoreDrift:
    """Two-sample KS on (sampled) scores, significant *and* at least `policy.ks_floor` to count.

    Raises:
        ValueError: either side is empty or holds NaN.
    """
    ref, cur = np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)
    if len(ref) == 0 or len(cur) == 0 or not (np.isfinite(ref).all() and np.isfinite(cur).all()):
        raise ValueError("score drift needs non-empty, finite reference and current scores")
    from scipy import stats  # imported where a check runs: the settings import this module's policy

    rng = np.random.default_rng(seed)
    ref, cur = _sample(ref, policy.max_sample, rng), _sample(cur, policy.max_sample, rng)
    result = stats.ks_2samp(ref, cur)
    statistic, p_value = float(result.statistic), float(result.pvalue)
    bound = dkw_bound(len(ref), policy.confidence) + dkw_bound(len(cur), policy.confidence)
    drifted = p_value < policy.p_value and statistic >= policy.ks_floor
    if drifted:
        reason = f"scores moved: KS {statistic:.3f} >= floor {policy.ks_floor} (p={p_value:.2g})"
    elif p_value < policy.p_value:
        reason = (
            f"scores shifted slightly: KS {statistic:.3f} below floor {policy.ks_floor} (p={p_value:.2g})"
        )
    else:
        reason = f"scores stable: KS {statistic:.3f}, p={p_value:.2g}"
    return ScoreDrift(statistic, p_value, len(ref), len(cur), bound, drifted, reason)


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    policy: DriftPolicy,
    seed: int = 0,
    at: datetime | None = None,
) -> FeatureDrift:
    """Evidently KS and normalized Wasserstein per feature on (sampled) rows; moved when both say so.

    The window has data drift when any feature moved. The snapshot is stamped `at` (default: now).

    Raises:
        ValueError: no rows on either side, or the current window lacks a reference column.
    """
    missing = [c for c in reference.columns if c not in current.columns]
    if reference.empty or current.empty or missing:
        raise ValueError(f"feature drift needs rows on both sides and every column; missing {missing}")
    from evidently import DataDefinition, Dataset, Report  # here: importing it takes seconds
    from evidently.metrics import ValueDrift

    columns = [str(c) for c in reference.columns]
    ref, cur = sample_rows(reference, policy, seed), sample_rows(current[columns], policy, seed)
    definition = DataDefinition(numerical_columns=columns)
    metrics = [ValueDrift(column=c, method=m) for c in columns for m in ("ks", "wasserstein")]
    snapshot = Report(metrics).run(
        reference_data=Dataset.from_pandas(ref, data_definition=definition),
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        timestamp=at,
        name=f"features {at:%Y-%m-%d}" if at else "features",
    )
    values = {
        (m["config"]["column"], m["config"]["method"]): float(m["value"]) for m in snapshot.dict()["metrics"]
    }
    alpha = policy.p_value / len(columns)  # Bonferroni: P(any false alarm) <= policy.p_value
    verdicts = tuple(
        ColumnDrift(
            c,
            values[c, "ks"],
            values[c, "wasserstein"],
            values[c, "ks"] < alpha and values[c, "wasserstein"] >= policy.effect_floor,
        )
        for c in columns
    )
    moved = [v.column for v in verdicts if v.drifted]
    if moved:
        reason = f"data drift: {len(moved)} of {len(columns)} features moved: {', '.join(moved)}"
    else:
        reason = (
            f"no data drift: no feature moved by >= {policy.effect_floor} std at p < {alpha:.2g} "
            f"({policy.p_value} over {len(columns)} features)"
        )
    return FeatureDrift(verdicts, len(ref), len(cur), bool(moved), reason, snapshot)


def alert_volume(
    flags: np.ndarray, target_fpr: float, policy: DriftPolicy, n_calibration: int | None = None
) -> AlertVolume:
    """Test whether the flagged share is significantly above the target FPR (too few is no alarm).

    A threshold calibrated on n normal scores (the ceil((n+1)(1-fpr))-th smallest, k) has a realized
    FPR that is itself random, Beta(n+1-k, k) under exchangeability. With `n_calibration` the alert count
    is therefore tested against that beta-binomial, not a binomial at exactly the target: otherwise a
    model calibrated on a few hundred rows would "drift" whenever its threshold landed a little low.

    Raises:
        ValueError: no rows.
    """
    flags = np.asarray(flags, dtype=bool)
    if flags.size == 0:
        raise ValueError("alert volume needs at least one row")
    from scipy import stats

    n, k = int(flags.size), int(flags.sum())
    if n_calibration is None:
        p_value = float(stats.binomtest(k, n, target_fpr, alternative="greater").pvalue)
    else:
        rank = min(conformal_rank(n_calibration, target_fpr), n_calibration)
        p_value = float(stats.betabinom.sf(k - 1, n, *realized_fpr_law(n_calibration, rank)))
    excessive = p_value < policy.alert_p_value
    verdict = "above" if excessive else "consistent with"
    reason = f"{k} alerts in {n} rows ({k / n:.2%}) {verdict} target {target_fpr:.2%} (p={p_value:.2g})"
    return AlertVolume(n, k, k / n, target_fpr, p_value, excessive, reason)


@dataclass(frozen=True)
class DriftVerdict:
    """One verdict on a window: did its features, the champion's scores or the alert volume move?"""

    features: FeatureDrift
    scores: ScoreDrift
    alerts: AlertVolume

    @property
    def drifted(self) -> bool:
        """True when any of the three checks fired."""
        return self.features.drifted or self.scores.drifted or self.alerts.excessive

    def checks(self) -> list[tuple[str, str, bool, str]]:
        """Each check as (name, value, moved, reason), for tables people read."""
        f, s, a = self.features, self.scores, self.alerts
        return [
            ("features", f"{len(f.drifted_columns)} of {len(f.columns)} features", f.drifted, f.reason),
            ("scores", f"KS {s.statistic:.3f} (±{s.error_bound:.3f})", s.drifted, s.reason),
            ("alerts", f"{a.rate:.2%} of {a.n_rows:,}", a.excessive, a.reason),
        ]

    @property
    def reasons(self) -> list[str]:
        """The reasons of the checks that fired, or every check's reason when none did."""
        fired = [
            part.reason
            for part, hit in (
                (self.features, self.features.drifted),
                (self.scores, self.scores.drifted),
                (self.alerts, self.alerts.excessive),
            )
            if hit
        ]
        return fired or [self.features.reason, self.scores.reason, self.alerts.reason]

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary: verdict, reasons, and every check's statistics."""
        f = self.features
        features = {
            "drifted": f.drifted,
            "reason": f.reason,
            "n_reference": f.n_reference,
            "n_current": f.n_current,
            "columns": [asdict(c) for c in f.columns],
        }
        return {
            "verdict": "drift" if self.drifted else "stable",
            "reasons": self.reasons,
            "features": features,
            "scores": asdict(self.scores),
            "alerts": asdict(self.alerts),
        }


def sample_rows(frame: pd.DataFrame, policy: DriftPolicy, seed: int = 0) -> pd.DataFrame:
    """At most `policy.max_sample` rows of a window, drawn without replacement (all rows if fewer)."""
    return frame if len(frame) <= policy.max_sample else frame.sample(policy.max_sample, random_state=seed)


def assess_drift(
    reference_rows: pd.DataFrame,
    reference_scores: np.ndarray,
    window_rows: pd.DataFrame,
    window_scores: np.ndarray,
    window_flags: np.ndarray,
    target_fpr: float,
    policy: DriftPolicy,
    seed: int = 0,
    at: datetime | None = None,
    calibration_drifted: bool = False,
) -> DriftVerdict:
    """Feature drift, score drift and alert volume of a (sampled) window, as one verdict.

    The alert-volume test assumes the window's normal scores are exchangeable with the calibration
    scores; when the alert rate is too high, its reason says why that assumption failed, if it can: the
    window's scores moved (score drift), or the champion's calibration window drifted within itself at fit
    (`calibration_drifted`, `VAEDetector.calibration_drift_`).

    Args:
        reference_rows: rows the model was trained on (a sample).
        reference_scores: the model's calibration scores (held-out normal rows that set its threshold).
        window_rows: the window's rows (at least the reference columns); sample large windows first.
        window_scores: the model's scores on `window_rows`.
        window_flags: the model's anomaly flags on `window_rows`.
        target_fpr: the alert rate the model was calibrated to.
        policy: the checks' thresholds.
        seed: seed of the row sampling.
        at: the time the window stands for (its Evidently snapshot's timestamp; default: now).
        calibration_drifted: the champion's calibration window drifted within itself.
    """
    scores = score_drift(reference_scores, window_scores, policy, seed)
    alerts = alert_volume(window_flags, target_fpr, policy, n_calibration=len(reference_scores))
    why = [
        text
        for text, applies in (
            ("the window's scores moved away from the calibration scores", scores.drifted),
            (
                "the champion's calibration window drifted within itself when it was fitted",
                calibration_drifted,
            ),
        )
        if applies
    ]
    if alerts.excessive and why:
        note = "; ".join(why) + ", so the exchangeability behind the target's range does not hold"
        alerts = replace(alerts, reason=f"{alerts.reason}: {note}")
    return DriftVerdict(feature_drift(reference_rows, window_rows, policy, seed, at), scores, alerts)


def score_snapshot(
    reference_scores: np.ndarray, window_scores: np.ndarray, threshold: float, at: datetime | None = None
) -> Any:
    """An Evidently snapshot of the scores, stamped `at`: their drift and the alert rate.

    KS drift of the window's scores against the calibration scores, and the alert rate (the mean of
    ``alert``, 1 above the threshold) on both sides.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import MeanValue, ValueDrift

    definition = DataDefinition(numerical_columns=["score", "alert"])

    def dataset(scores: np.ndarray) -> Any:
        frame = pd.DataFrame({"score": scores, "alert": (scores > threshold).astype(float)})
        return Dataset.from_pandas(frame, data_definition=definition)

    return Report([ValueDrift(column="score", method="ks"), MeanValue(column="alert")]).run(
        current_data=dataset(window_scores),
        reference_data=dataset(reference_scores),
        timestamp=at,
        name=f"scores {at:%Y-%m-%d}" if at else "scores",
    )
