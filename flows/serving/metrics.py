"""The service's Prometheus metrics: requests, latency, rows, alerts, a histogram of scores, failed refreshes.

Example:
    >>> metrics = Metrics(lambda: holder.refresh_failures)
    >>> metrics.observe(0.002, prediction.score, prediction.is_anomaly)
    >>> generate_latest(metrics.registry)           # the /metrics page
"""

import math
import threading
from collections.abc import Callable

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily


class _ScoreHistogram:
    """A Prometheus histogram of scores filled a request at a time (one numpy pass, not one call per row)."""

    BUCKETS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, math.inf)

    def __init__(self) -> None:
        self.counts = np.zeros(len(self.BUCKETS), dtype=np.int64)
        self.total = 0.0
        self.lock = threading.Lock()

    def observe(self, scores: np.ndarray) -> None:
        per_bucket = np.bincount(np.searchsorted(self.BUCKETS, scores), minlength=len(self.BUCKETS))
        with self.lock:
            self.counts += per_bucket[: len(self.BUCKETS)]
            self.total += float(scores.sum())

    def collect(self) -> list[HistogramMetricFamily]:
        with self.lock:
            cumulative = np.cumsum(self.counts).tolist()
            total = self.total
        buckets = [
            (str(b) if b != math.inf else "+Inf", c) for b, c in zip(self.BUCKETS, cumulative, strict=True)
        ]
        return [HistogramMetricFamily("sentinel_score", "Anomaly scores.", buckets=buckets, sum_value=total)]


class _RefreshFailures:
    """The champion polls that failed (registry or artifact store down, a version that does not load)."""

    def __init__(self, count: Callable[[], int]) -> None:
        self.count = count

    def collect(self) -> list[CounterMetricFamily]:
        help_text = "Champion refreshes that failed; the service kept its model."
        return [CounterMetricFamily("sentinel_champion_refresh_failures", help_text, value=self.count())]


class Metrics:
    """Prometheus collectors of one app (its own registry, so several apps can live in one process)."""

    def __init__(self, refresh_failures: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("sentinel_score_requests", "Scoring requests served.", registry=self.registry)
        self.rows = Counter("sentinel_scored_rows", "Rows scored.", registry=self.registry)
        self.alerts = Counter("sentinel_alerts", "Rows flagged as anomalies.", registry=self.registry)
        self.latency = Histogram(
            "sentinel_score_latency_seconds", "Time to score one request.", registry=self.registry
        )
        self.scores = _ScoreHistogram()
        self.registry.register(self.scores)
        self.registry.register(_RefreshFailures(refresh_failures))

    def observe(self, seconds: float, scores: np.ndarray, flags: np.ndarray) -> None:
        """Count one request: its latency, rows, alerts and scores."""
        self.requests.inc()
        self.latency.observe(seconds)
        self.rows.inc(len(scores))
        self.alerts.inc(int(flags.sum()))
        self.scores.observe(scores)
