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

from flows.settings import TriggerPolicy


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
