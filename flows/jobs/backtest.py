"""Replay retraining over past days on a scratch copy: how often would these settings promote, and why not?

Before changing a cadence or a gate bound, run the real retrain flow (validation, warm start, training,
gates, compare-and-set promotion) as of each replayed day. The dataset's partitions in the replayed span,
the alerts the lake holds for them today and the shadow set are copied into a scratch lake with a
fresh SQLite registry, so the real lake and registry are only read. The first replayed day trains a cold
start, or warm-starts from a version of the real registry adopted as the replay's first champion.

Example:
    >>> steps = replay(settings, "mammography", [date(2026, 11, 20), date(2026, 11, 27)], Path("bt"))
    >>> [(s.as_of, s.verdict) for s in steps]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from flows.adapters.connect import lake_of, registry_of
from flows.adapters.lake import Lake
from flows.errors import StoreError
from flows.jobs.common import Progress
from flows.jobs.retrain import RetrainOutcome, retrain
from flows.settings import LakeSettings, RegistrySettings, Settings
from vae import InputError, SentinelError


@dataclass(frozen=True)
class ReplayStep:
    """One replayed day: the retrain's outcome, or why the window produced no candidate."""

    as_of: date
    outcome: RetrainOutcome | None
    stopped: str | None = None  # why not: failed validation, no partition, too few rows to calibrate...

    @property
    def verdict(self) -> str:
        """'promoted', 'refused' or 'no candidate'."""
        if self.outcome is None:
            return "no candidate"
        return "promoted" if self.outcome.promoted else "refused"


def replay_days(start: date, end: date, every_days: int) -> list[date]:
    """start, start + every_days, ... up to end (end included when the cadence reaches it).

    Raises:
        InputError: end before start, or every_days < 1.
    """
    if end < start or every_days < 1:
        raise InputError(f"a replay needs --from <= --to and --every >= 1, got {start}, {end}, {every_days}")
    return [start + timedelta(days=d) for d in range(0, (end - start).days + 1, every_days)]


def scratch_settings(settings: Settings, folder: Path) -> Settings:
    """`settings` with a local lake and an SQLite registry in `folder` (same model and experiment names)."""
    registry = RegistrySettings(
        model_name=settings.registry.model_name, experiment=settings.registry.experiment
    )
    return settings.model_copy(update={"home": folder, "lake": LakeSettings(), "registry": registry})


def copy_span(
    source: Lake, target: Lake, dataset: str, start: date, end: date, shadow_key: str | None
) -> None:
    """Copy the dataset's files dated [start, end], byte for byte, and the shadow set.

    Copied: the partitions, and the alerts the lake holds for them (rows a retrain drops).

    Raises:
        StoreError: the span holds no partition.
    """
    days = [d.isoformat() for d in source.days(dataset) if start <= d <= end]
    partitions = [key for day in days for key in source.store.keys(f"{dataset}/date={day}")]
    if not partitions:
        raise StoreError(f"no partitions of {dataset!r} between {start} and {end} in {source.store.uri}")
    alerts = [key for day in days for key in source.store.keys(f"{dataset}/_alerts/date={day}")]
    for key in partitions + alerts + ([f"{dataset}/{shadow_key}"] if shadow_key else []):
        target.store.write(key, source.store.read(key))


def replay(
    settings: Settings,
    dataset: str,
    days: list[date],
    folder: Path,
    champion: str | None = None,
    on_day: Progress | None = None,
) -> list[ReplayStep]:
    """Retrain as of each day on a scratch copy; one step per day.

    Args:
        settings: the real settings; the replay runs with them, pointed at the scratch copy.
        dataset: dataset folder in the lake.
        days: the days to retrain as of, oldest first.
        folder: where the scratch lake and registry go.
        champion: a version of the real registry to start from (e.g. the one serving on the first day);
            it becomes version 1 of the scratch registry. None: the first day trains a cold start.
        on_day: called after each replayed day with (days done, days, what that day decided).

    Raises:
        StoreError: the span holds no partition.
        RegistryError: the real registry has no such version.
    """
    scratch = scratch_settings(settings, folder)
    span_start = days[0] - timedelta(days=settings.retrain.window_days - 1)
    copy_span(lake_of(settings), lake_of(scratch), dataset, span_start, days[-1], settings.retrain.shadow_key)
    if champion is not None:
        registry_of(scratch).adopt(registry_of(settings), champion)
    steps = []
    for day in days:
        try:
            steps.append(
                ReplayStep(day, retrain(settings=scratch, dataset=dataset, as_of=day, reason="backtest"))
            )
        except SentinelError as exc:  # this day gives no candidate (validation, data, calibration, ...)
            steps.append(ReplayStep(day, None, str(exc).splitlines()[0]))
        if on_day is not None:
            on_day(len(steps), len(days), f"{day}: {steps[-1].verdict}")
    return steps
