"""Promotion gates: every pass and fail path, the first run, and the bounds' arithmetic."""

import pytest

from validation.gates import GateBounds, ModelMetrics, promotion_decision

BOUNDS = GateBounds(loss_tolerance=0.02, alert_rate_lower=0.25, alert_rate_upper=2.5, recall_tolerance=0.05)


def _decide(candidate, champion=None, fpr=0.01):
    return promotion_decision(candidate, champion, BOUNDS, fpr)


def test_first_run_promotes_a_calibrated_candidate_and_says_why():
    decision = _decide(ModelMetrics(holdout_loss=3.0, alert_rate=0.01, recall=0.4))
    assert decision.promote and decision.reasons == []
    loss, _, recall = decision.gates
    assert loss.bound is None and "first version" in loss.reason
    assert recall.bound is None and recall.value == 0.4


def test_first_run_still_checks_the_alert_rate():
    decision = _decide(ModelMetrics(holdout_loss=3.0, alert_rate=0.05))
    assert not decision.promote and decision.reasons == ["alert rate 5.00% outside [0.25%, 2.50%]"]


@pytest.mark.parametrize(
    ("candidate_loss", "champion_loss", "passes"),
    [
        (1.0, 1.0, True),
        (1.02, 1.0, True),  # exactly at the tolerance
        (1.03, 1.0, False),
        (-5.0, -5.0, True),
        (-4.95, -5.0, True),  # negative losses: the bound is champion + 2% of |champion| = -4.9
        (-4.85, -5.0, False),
    ],
)
def test_loss_gate(candidate_loss, champion_loss, passes):
    decision = _decide(ModelMetrics(candidate_loss, 0.01), ModelMetrics(champion_loss, 0.01))
    gate = decision.gates[0]
    assert gate.passed is passes and decision.promote is passes
    assert gate.bound == pytest.approx(champion_loss + 0.02 * abs(champion_loss))


@pytest.mark.parametrize(("rate", "passes"), [(0.0025, True), (0.002, False), (0.025, True), (0.026, False)])
def test_alert_rate_gate_band(rate, passes):
    gate = _decide(ModelMetrics(1.0, rate)).gates[1]
    assert gate.passed is passes and gate.bound == pytest.approx((0.0025, 0.025))


@pytest.mark.parametrize(("recall", "passes"), [(0.50, True), (0.45, True), (0.44, False)])
def test_recall_gate_against_the_champion(recall, passes):
    decision = _decide(ModelMetrics(1.0, 0.01, recall), ModelMetrics(1.0, 0.01, 0.5))
    assert decision.gates[2].passed is passes and decision.promote is passes


def test_without_a_shadow_set_there_is_no_recall_gate():
    decision = _decide(ModelMetrics(1.0, 0.01), ModelMetrics(1.0, 0.01))
    assert [g.name for g in decision.gates] == ["loss", "alert_rate"]


def test_every_failing_gate_is_a_reason():
    decision = _decide(ModelMetrics(2.0, 0.2, 0.1), ModelMetrics(1.0, 0.01, 0.9))
    assert not decision.promote and len(decision.reasons) == 3


@pytest.mark.parametrize(
    ("parity", "passes"), [(0.0, True), (1e-5, True), (2e-5, False), (float("inf"), False)]
)
def test_export_parity_gate(parity, passes):
    decision = _decide(ModelMetrics(1.0, 0.01, export_parity=parity))
    assert decision.gates[-1].name == "export_parity" and decision.gates[-1].passed is passes
    assert decision.promote is passes
