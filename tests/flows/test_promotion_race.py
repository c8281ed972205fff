"""Concurrent champion moves on the embedded default: the file lock lets exactly one of them through."""

from __future__ import annotations

import os

import pytest

from flows.adapters.connect import registry_of
from tests.races import RACERS, extra_versions, race

pytestmark = [pytest.mark.slow, pytest.mark.reliability]


def test_eight_processes_promoting_at_once_leave_one_winner_and_a_ledger_that_agrees(champion):
    settings = champion.settings
    registry = registry_of(settings)
    before = registry.promotions()
    versions = extra_versions(registry.client, registry.model_name, "1", RACERS)

    outcome = race(os.environ | {"SENTINEL_HOME": str(settings.home)}, versions, replaced="1")

    (winner,) = outcome.winners
    for version, run in outcome.runs.items():
        if version != winner:
            lines = run.stdout.strip().splitlines()
            assert run.returncode == 1 and len(lines) == 1, run.stdout + run.stderr[-2000:]
            assert f"changed from 1 to {winner} before this override" in lines[0], lines[0]
    assert (registry.alias_version("champion"), registry.alias_version("previous")) == (winner, "1")
    moves = registry.promotions()[len(before) :]
    assert [(m.action, m.champion, m.replaced, m.state) for m in moves] == [("override", winner, "1", "done")]
