"""Promotion gates: promote a candidate only when it is provably no worse than the champion.

Gates, each with its value, bound and verdict in the report:

1. ``loss``: candidate holdout loss <= champion holdout loss + tolerance * |champion loss| (the absolute
   value keeps the bound on the lenient side when a Gaussian NLL makes losses negative).
2. ``alert_rate``: candidate alert rate on holdout normal rows in [target_fpr * lower, target_fpr * upper].
3. ``recall`` (only with a shadow set of known anomalies): candidate recall at its threshold >= champion
   recall - tolerance.
4. ``export_parity`` (when the candidate was exported): the exported artifacts' largest score difference
   from the detector, relative to the score scale, <= tolerance (inf when an export failed).

First run (no champion): there is nothing to compare with, so ``loss`` and ``recall`` pass with no bound
and say so; ``alert_rate`` is absolute and still applies. A first candidate is promoted when it is
calibrated.

Example:
    >>> decision = promotion_decision(candidate, champion=None, bounds=GateBounds(), target_fpr=0.01)
    >>> decision.promote, [g.name for g in decision.gates]
    (True, ['loss', 'alert_rate'])
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class GateBounds(BaseModel):
    """Tolerances of the promotion gates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    loss_tolerance: float = Field(0.02, ge=0, description="Allowed relative holdout-loss increase.")
    alert_rate_lower: float = Field(0.25, ge=0, description="Lowest alert rate, as a multiple of target_fpr.")
    alert_rate_upper: float = Field(2.5, ge=1, description="Highest alert rate, as a multiple of target_fpr.")
    recall_tolerance: float = Field(0.05, ge=0, le=1, description="Allowed absolute recall drop.")
    export_parity_tolerance: float = Field(
        1e-5, gt=0, description="Largest |exported - detector score| / score scale on holdout rows."
    )


@dataclass(frozen=True)
class ModelMetrics:
    """What the gates compare, all measured on the same holdout.

    Attributes:
        holdout_loss: mean negative ELBO per holdout normal row (lower is better).
        alert_rate: share of holdout normal rows flagged.
        recall: share of shadow anomalies flagged, when a shadow set is configured.
        export_parity: worst relative score difference of the exported artifacts, when exported.
    """

    holdout_loss: float
    alert_rate: float
    recall: float | None = None
    export_parity: float | None = None


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict; `bound` is None when there was nothing to compare with."""

    name: str
    value: float
    bound: float | tuple[float, float] | None
    passed: bool
    reason: str


@dataclass(frozen=True)
class Decision:
    """Whether to promote, and every gate's result."""

    gates: tuple[GateResult, ...]

    @property
    def promote(self) -> bool:
        """True when every gate passed."""
        return all(g.passed for g in self.gates)

    @property
    def reasons(self) -> list[str]:
        """Why the candidate was refused (empty when promoted)."""
        return [g.reason for g in self.gates if not g.passed]


def loss_gate(candidate: ModelMetrics, champion: ModelMetrics | None, tolerance: float) -> GateResult:
    """Candidate holdout loss against the champion's, with a relative tolerance."""
    value = candidate.holdout_loss
    if champion is None:
        return GateResult("loss", value, None, True, "no champion: first version")
    bound = champion.holdout_loss + tolerance * abs(champion.holdout_loss)
    passed = value <= bound
    verdict = "within" if passed else "above"
    return GateResult("loss", value, bound, passed, f"holdout loss {value:.4g} {verdict} bound {bound:.4g}")


def alert_rate_gate(candidate: ModelMetrics, target_fpr: float, lower: float, upper: float) -> GateResult:
    """Candidate alert rate on holdout normal rows within a band around the target FPR."""
    lo, hi = target_fpr * lower, target_fpr * upper
    value = candidate.alert_rate
    passed = lo <= value <= hi
    verdict = "within" if passed else "outside"
    return GateResult(
        "alert_rate", value, (lo, hi), passed, f"alert rate {value:.2%} {verdict} [{lo:.2%}, {hi:.2%}]"
    )


def recall_gate(candidate: ModelMetrics, champion: ModelMetrics | None, tolerance: float) -> GateResult:
    """Candidate recall on shadow anomalies against the champion's, with an absolute tolerance."""
    if candidate.recall is None:
        raise ValueError("recall_gate needs the candidate's recall on a shadow set")
    value = candidate.recall
    if champion is None or champion.recall is None:
        return GateResult("recall", value, None, True, "no champion recall to compare with")
    bound = champion.recall - tolerance
    passed = value >= bound
    verdict = "at or above" if passed else "below"
    return GateResult(
        "recall", value, bound, passed, f"shadow recall {value:.1%} {verdict} bound {bound:.1%}"
    )


def parity_gate(candidate: ModelMetrics, tolerance: float) -> GateResult:
    """Exported artifacts score like the detector, within a relative tolerance."""
    if candidate.export_parity is None:
        raise ValueError("parity_gate needs the candidate's export parity")
    value = candidate.export_parity
    passed = value <= tolerance
    verdict = "within" if passed else "above"
    return GateResult(
        "export_parity", value, tolerance, passed, f"export parity {value:.3g} {verdict} {tolerance:g}"
    )


def promotion_decision(
    candidate: ModelMetrics, champion: ModelMetrics | None, bounds: GateBounds, target_fpr: float
) -> Decision:
    """Run every applicable gate; recall and export_parity run only when the candidate has them."""
    gates = [
        loss_gate(candidate, champion, bounds.loss_tolerance),
        alert_rate_gate(candidate, target_fpr, bounds.alert_rate_lower, bounds.alert_rate_upper),
    ]
    if candidate.recall is not None:
        gates.append(recall_gate(candidate, champion, bounds.recall_tolerance))
    if candidate.export_parity is not None:
        gates.append(parity_gate(candidate, bounds.export_parity_tolerance))
    return Decision(tuple(gates))
