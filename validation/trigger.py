"""May a drift verdict start a retrain now? A cooldown and a cap per period prevent retrain storms.

Pure: it sees only the times of earlier drift-triggered retrains (kept as tagged monitor runs in MLflow,
so every worker sees the same history). Drift never promotes anything: the retrain's gates decide.

Example:
    >>> trigger_decision(now, earlier=[now - timedelta(hours=2)], policy=TriggerPolicy())
    TriggerDecision(allowed=False, reason="cooldown: last drift-triggered retrain 2.0 h ago (< 6 h)")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field


class TriggerPolicy(BaseModel):
    """When a drift verdict may start a retrain: never within the cooldown, at most a cap per period."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(True, description="Start a retrain when the monitor says drift.")
    cooldown_hours: float = Field(6.0, ge=0, description="Quiet time after a drift-triggered retrain.")
    max_per_period: int = Field(3, ge=1, description="Most drift-triggered retrains per period.")
    period_hours: float = Field(24.0, gt=0, description="Length of the period the cap counts over.")


@dataclass(frozen=True)
class TriggerDecision:
    """Whether a retrain may start, and why (recorded with the monitor run)."""

    allowed: bool
    reason: str


def trigger_decision(now: datetime, earlier: Sequence[datetime], policy: TriggerPolicy) -> TriggerDecision:
    """Allow a retrain unless triggering is off, one ran within the cooldown, or the period's cap is used."""
    if not policy.enabled:
        return TriggerDecision(False, "drift-triggered retraining is off (monitor.trigger.enabled)")
    past = sorted(t for t in earlier if t <= now)
    if past and now - past[-1] < timedelta(hours=policy.cooldown_hours):
        hours = (now - past[-1]).total_seconds() / 3600
        return TriggerDecision(
            False, f"cooldown: last drift-triggered retrain {hours:.1f} h ago (< {policy.cooldown_hours:g} h)"
        )
    in_period = [t for t in past if now - t < timedelta(hours=policy.period_hours)]
    if len(in_period) >= policy.max_per_period:
        return TriggerDecision(
            False,
            f"cap: {len(in_period)} drift-triggered retrains in the last {policy.period_hours:g} h "
            f"(at most {policy.max_per_period})",
        )
    return TriggerDecision(
        True,
        f"allowed: {len(in_period)} of {policy.max_per_period} drift-triggered retrains used in the last "
        f"{policy.period_hours:g} h, none within the {policy.cooldown_hours:g} h cooldown",
    )
