"""The retrain trigger's cooldown and cap, on explicit clocks."""

from datetime import UTC, datetime, timedelta

from flows.settings import TriggerPolicy
from validation.trigger import trigger_decision

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
POLICY = TriggerPolicy(cooldown_hours=6, max_per_period=2, period_hours=24)


def test_the_first_drift_may_trigger():
    decision = trigger_decision(NOW, [], POLICY)
    assert decision.allowed and decision.reason.startswith("allowed: 0 of 2 drift-triggered retrains used")


def test_a_retrain_within_the_cooldown_blocks_the_next():
    decision = trigger_decision(NOW, [NOW - timedelta(hours=5)], POLICY)
    assert not decision.allowed and decision.reason.startswith("cooldown: last drift-triggered retrain 5.0 h")
    assert trigger_decision(NOW, [NOW - timedelta(hours=7)], POLICY).allowed


def test_the_cap_counts_only_the_period():
    earlier = [NOW - timedelta(hours=20), NOW - timedelta(hours=10)]
    decision = trigger_decision(NOW, earlier, POLICY)
    assert not decision.allowed and decision.reason.startswith("cap: 2 drift-triggered retrains")
    assert trigger_decision(NOW, [NOW - timedelta(hours=30), NOW - timedelta(hours=10)], POLICY).allowed


def test_triggering_can_be_switched_off():
    decision = trigger_decision(NOW, [], POLICY.model_copy(update={"enabled": False}))
    assert not decision.allowed and "off" in decision.reason
