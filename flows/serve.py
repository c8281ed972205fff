"""The scoring service: FastAPI over the registered champion, following the alias as it moves.

Requests take the current model once and use it to the end, so a swap (a reference assignment, done by a
background thread that polls the alias) never fails or mixes a request in flight.

Example:
    >>> app = create_app(settings)     # then: uvicorn.run(app) or `sentinel serve`
    >>> # POST /score {"records": [{"s01": 0.1, ...}]} -> {"version": "2", "threshold": ..., "results": [...]}
"""

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from flows.registry import LoadedVersion, Registry
from flows.retrain import registry_of
from flows.settings import Settings
from vae.errors import InputError

log = logging.getLogger(__name__)


class ScoreRequest(BaseModel):
    """Rows to score, in one of four layouts (exactly one): ours or MLflow's serving formats."""

    model_config = ConfigDict(extra="forbid")

    records: list[dict[str, Any]] | None = Field(None, description="One object per row.")
    columns: dict[str, list[Any]] | None = Field(None, description="Column name -> values.")
    dataframe_split: dict[str, Any] | None = Field(None, description="MLflow: {columns, data}.")
    dataframe_records: list[dict[str, Any]] | None = Field(None, description="MLflow: one object per row.")

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame (JSON nulls become NaN); InputError unless exactly one layout is given."""
        raw = self._raw_frame()
        return raw.mask(raw.isna(), np.nan).infer_objects()

    def _raw_frame(self) -> pd.DataFrame:
        given = [
            k for k in ("records", "columns", "dataframe_split", "dataframe_records") if getattr(self, k)
        ]
        if len(given) != 1:
            raise InputError(
                f"give exactly one of records, columns, dataframe_split, dataframe_records; got {given}"
            )
        if self.columns is not None:
            return pd.DataFrame(self.columns)
        if self.dataframe_split is not None:
            split = self.dataframe_split
            return pd.DataFrame(split.get("data", []), columns=split.get("columns"))
        return pd.DataFrame.from_records(self.records or self.dataframe_records)


class RowResult(BaseModel):
    """One row's verdict; the explanation fields only with ?explain=true."""

    score: float
    is_anomaly: bool
    p_value: float
    reconstruction: float | None = None
    contributions: dict[str, float] | None = None


class ScoreResponse(BaseModel):
    """Which model scored, with which threshold, and the per-row results."""

    model: str
    version: str
    threshold: float
    results: list[RowResult]


class ModelHolder:
    """The current champion; `refresh` loads a new one when the alias has moved."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.current: LoadedVersion | None = None
        self._lock = threading.Lock()  # one load at a time; readers never wait

    def refresh(self) -> bool:
        """Follow the champion alias; returns True when a new version was swapped in."""
        with self._lock:
            version = self.registry.alias_version("champion")
            if version is None or (self.current is not None and self.current.version == version):
                return False
            self.current = self.registry.load_version(version)  # one reference assignment: atomic
            return True

    def try_refresh(self) -> None:
        """`refresh`, keeping the current model (and logging why) when the registry cannot be read."""
        try:
            self.refresh()
        except Exception as exc:  # registry down, corrupt version: keep serving what we have
            log.warning(
                "champion refresh failed, still serving %s: %s", self.current and self.current.version, exc
            )

    def follow(self, every_seconds: float, stop: threading.Event) -> None:
        """Poll the alias until `stop` is set."""
        while not stop.wait(every_seconds):
            self.try_refresh()


def create_app(settings: Settings, holder: ModelHolder | None = None) -> FastAPI:
    """The service: /score, /health, /ready, /metadata, /metrics; OpenAPI at /openapi.json."""
    cfg = settings.serve
    holder = holder or ModelHolder(registry_of(settings))
    metrics = _Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        holder.try_refresh()  # no champion yet: /ready says so, the poller keeps trying
        poller = threading.Thread(target=holder.follow, args=(cfg.poll_seconds, stop), daemon=True)
        poller.start()
        yield
        stop.set()

    app = FastAPI(title="VAE Sentinel scoring service", version="1", lifespan=lifespan)
    bearer = HTTPBearer(auto_error=False)

    def authorized(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        token = cfg.token.get_secret_value() if cfg.token else None
        if token and (creds is None or not secrets.compare_digest(creds.credentials, token)):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    def model() -> LoadedVersion:
        current = holder.current
        if current is None:
            raise HTTPException(503, f"no champion of {holder.registry.model_name} is registered yet")
        return current

    @app.get("/health")
    def health() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/ready")
    def ready(current: Annotated[LoadedVersion, Depends(model)]) -> dict[str, str]:
        """A champion is loaded."""
        return {"status": "ready", "version": current.version}

    @app.get("/metadata", dependencies=[Depends(authorized)])
    def metadata(current: Annotated[LoadedVersion, Depends(model)]) -> dict[str, Any]:
        """Model name, version, input columns, threshold and target FPR."""
        det = current.detector
        return {
            "model": holder.registry.model_name,
            "version": current.version,
            "columns": list(current.contract.names),
            "threshold": det.threshold_,
            "target_fpr": det.threshold_fpr_,
        }

    @app.post("/score", dependencies=[Depends(authorized)])
    def score(
        body: ScoreRequest, current: Annotated[LoadedVersion, Depends(model)], explain: bool = False
    ) -> ScoreResponse:
        """Score rows: per row the score, flag and p-value (and, with explain, where the error comes from)."""
        started = time.perf_counter()
        try:
            frame = body.frame()
            if len(frame) > cfg.max_rows:
                raise HTTPException(413, f"{len(frame)} rows in one request; the limit is {cfg.max_rows}")
            results = _score(current, frame, explain)
        except (InputError, ValueError, TypeError) as exc:
            raise HTTPException(422, str(exc).splitlines()[0]) from None
        metrics.observe(time.perf_counter() - started, results)
        return ScoreResponse(
            model=holder.registry.model_name,
            version=current.version,
            threshold=current.detector.threshold_,
            results=results,
        )

    @app.get("/metrics")
    def prometheus() -> Response:
        """Prometheus metrics: requests, latency, rows, alerts, scores."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Response:
        size = int(request.headers.get("content-length") or 0)
        if size > cfg.max_body_bytes:
            return Response(f'{{"detail":"body of {size} bytes exceeds {cfg.max_body_bytes}"}}', 413)
        return await call_next(request)

    return app


def _score(current: LoadedVersion, frame: pd.DataFrame, explain: bool) -> list[RowResult]:
    det = current.detector
    prediction = det.predict(frame)
    rows = [
        {"score": float(s), "is_anomaly": bool(a), "p_value": float(p)}
        for s, a, p in zip(prediction.score, prediction.is_anomaly, prediction.p_value, strict=True)
    ]
    if explain:
        contributions = det.feature_contributions(frame)
        for row, (_, parts) in zip(rows, contributions.iterrows(), strict=True):
            row["reconstruction"] = float(parts.sum())
            row["contributions"] = {k: float(v) for k, v in parts.items()}
    return [RowResult(**r) for r in rows]


class _Metrics:
    """Prometheus collectors of one app (its own registry, so several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("sentinel_score_requests", "Scoring requests served.", registry=self.registry)
        self.rows = Counter("sentinel_scored_rows", "Rows scored.", registry=self.registry)
        self.alerts = Counter("sentinel_alerts", "Rows flagged as anomalies.", registry=self.registry)
        self.latency = Histogram(
            "sentinel_score_latency_seconds", "Time to score one request.", registry=self.registry
        )
        self.scores = Histogram(
            "sentinel_score", "Anomaly scores.", buckets=(0.5, 1, 2, 4, 8, 16, 32, 64), registry=self.registry
        )

    def observe(self, seconds: float, results: list[RowResult]) -> None:
        self.requests.inc()
        self.latency.observe(seconds)
        self.rows.inc(len(results))
        self.alerts.inc(sum(r.is_anomaly for r in results))
        for r in results:
            self.scores.observe(r.score)
