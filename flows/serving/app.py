"""The scoring service: FastAPI over the registered champion, following the alias as it moves.

Requests take the current model once and use it to the end, so a swap (a reference assignment, done by a
background thread that polls the alias) never fails or mixes a request in flight.

Example:
    >>> app = create_app(settings)     # then: uvicorn.run(app) or `sentinel serve`
    >>> # POST /score {"records": [{"s01": 0.1, ...}]} -> {"version": "2", "threshold": ..., "results": [...]}
"""

import contextlib
import gc
import logging
import math
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import Annotated, Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.ipc
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import HistogramMetricFamily
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flows.adapters.connect import registry_of
from flows.adapters.registry import LoadedVersion, Registry
from flows.serving.streams import StreamBook
from flows.settings import Settings
from vae.errors import InputError

log = logging.getLogger(__name__)
ARROW = "application/vnd.apache.arrow.stream"  # the /score body type for Arrow IPC streams


class ScoreRequest(BaseModel):
    """Rows to score, in one of four layouts (exactly one): ours or MLflow's serving formats."""

    model_config = ConfigDict(extra="forbid")

    records: list[dict[str, Any]] | None = Field(None, description="One object per row.")
    columns: dict[str, list[Any]] | None = Field(None, description="Column name -> values.")
    dataframe_split: dict[str, Any] | None = Field(None, description="MLflow: {columns, data}.")
    dataframe_records: list[dict[str, Any]] | None = Field(None, description="MLflow: one object per row.")

    def rows(self, names: Sequence[str]) -> np.ndarray | pd.DataFrame:
        """The rows to score, for a model whose input columns are `names`.

        A numeric columnar body (`columns`, `dataframe_split`) that holds every column becomes a float
        matrix in `names` order (JSON null -> NaN), with no DataFrame on the way: the fast path. Anything
        else becomes a DataFrame, and the detector names what is wrong with it.

        Raises:
            InputError: not exactly one layout given.
        """
        given = [
            k for k in ("records", "columns", "dataframe_split", "dataframe_records") if getattr(self, k)
        ]
        if len(given) != 1:
            raise InputError(
                f"give exactly one of records, columns, dataframe_split, dataframe_records; got {given}"
            )
        layout = given[0]
        if layout in ("columns", "dataframe_split"):
            with contextlib.suppress(ValueError, TypeError):  # not numeric or not rectangular: the slow path
                matrix, columns = self._numeric(layout)
                position = {str(c): i for i, c in enumerate(columns)}
                if len(position) == len(columns) == matrix.shape[1] and set(names) <= set(position):
                    order = [position[n] for n in names]
                    return matrix if order == list(range(len(columns))) else matrix[:, order]
                return pd.DataFrame(matrix, columns=columns)
        raw = self._raw_frame(layout)
        return raw.mask(raw.isna(), np.nan).infer_objects()

    def _numeric(self, layout: str) -> tuple[np.ndarray, list[Any]]:
        """(float matrix, column names) of a columnar body; ValueError/TypeError when it is not one."""
        if layout == "columns":
            columns = self.columns or {}
            matrix, names = np.asarray(list(columns.values()), dtype=np.float64).T, list(columns)
        else:
            split = self.dataframe_split or {}
            matrix, names = np.asarray(split.get("data"), dtype=np.float64), list(split.get("columns") or [])
        if matrix.ndim != 2:
            raise ValueError("not a table")
        return matrix, names

    def _raw_frame(self, layout: str) -> pd.DataFrame:
        if layout == "columns":
            return pd.DataFrame(self.columns)
        if layout == "dataframe_split":
            split = self.dataframe_split or {}
            return pd.DataFrame(split.get("data", []), columns=split.get("columns"))
        return pd.DataFrame.from_records(self.records or self.dataframe_records)


BODY = {  # the request body of /score and /stream in the OpenAPI schema: JSON layouts or an Arrow stream
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": ScoreRequest.model_json_schema()},
            ARROW: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
EXPLAIN = {  # /score's query parameter, read inline (see `admit`) and documented here
    "name": "explain",
    "in": "query",
    "required": False,
    "schema": {"type": "boolean", "default": False},
    "description": "Add each row's reconstruction term and per-feature contributions.",
}
STREAM_ID = Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$", description="Your series' id.")


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


class StreamResult(BaseModel):
    """One completed window of a stream: its score, the smoothed score and the flag on the smoothed score."""

    step: int = Field(description="Position in the stream (from 0) of the window's last observation.")
    score: float
    smoothed: float
    is_anomaly: bool


class StreamResponse(BaseModel):
    """Which model scored, the smoothing and its threshold, and one result per window completed."""

    model: str
    version: str
    stream_id: str
    window: int
    beta: float
    threshold: float
    steps: int = Field(description="Observations this stream has received.")
    results: list[StreamResult]


class RawRoute(APIRoute):
    """A documented route whose endpoint takes the Request and returns the Response itself.

    FastAPI still puts it in the OpenAPI schema, but does not solve parameters or dependencies for it:
    that costs about 0.08 ms a request here, 5% of a 1000-row /score.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The endpoint itself."""
        return self.endpoint  # type: ignore[no-any-return]


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
    """The service: /score, /stream, /health, /ready, /metadata, /metrics; OpenAPI at /openapi.json."""
    cfg = settings.serve
    holder = holder or ModelHolder(registry_of(settings))
    metrics = _Metrics()
    streams = StreamBook(cfg.stream_beta, cfg.max_streams)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        holder.try_refresh()  # no champion yet: /ready says so, the poller keeps trying
        gc.freeze()  # the libraries' and model's objects: garbage collections stop rescanning them
        poller = threading.Thread(target=holder.follow, args=(cfg.poll_seconds, stop), daemon=True)
        poller.start()
        yield
        stop.set()

    app = FastAPI(title="VAE Sentinel scoring service", version="1", lifespan=lifespan)
    bearer = HTTPBearer(auto_error=False)

    token = cfg.token.get_secret_value() if cfg.token else None

    def check_token(credentials: str | None) -> None:
        if token and (credentials is None or not secrets.compare_digest(credentials, token)):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    async def authorized(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        check_token(creds.credentials if creds else None)

    def champion() -> LoadedVersion:
        current = holder.current
        if current is None:
            raise HTTPException(503, f"no champion of {holder.registry.model_name} is registered yet")
        return current

    async def model() -> LoadedVersion:
        return champion()

    def admit(request: Request) -> LoadedVersion:
        """/score's and /stream's checks, inline: FastAPI dependencies cost about 0.2 ms a request here.

        The body size (before the body is read), the bearer token, and a loaded champion.
        """
        size = int(request.headers.get("content-length") or 0)
        if size > cfg.max_body_bytes:
            raise HTTPException(413, f"body of {size} bytes exceeds the limit of {cfg.max_body_bytes}")
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        check_token(credentials if scheme.lower() == "bearer" and credentials else None)
        return champion()

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
        """Model name, version, input columns, window length, threshold, target FPR and its 95% interval."""
        det = current.detector
        return {
            "model": holder.registry.model_name,
            "version": current.version,
            "columns": list(current.contract.names),
            "window": det.config.window,
            "threshold": det.threshold_,
            "target_fpr": det.threshold_fpr_,
            "fpr_interval_95": list(det.fpr_interval()),
        }

    raw_routes = APIRouter(route_class=RawRoute)

    @raw_routes.post(
        "/score",
        response_model=ScoreResponse,
        response_class=Response,
        openapi_extra=BODY | {"parameters": [EXPLAIN], "security": [{"HTTPBearer": []}]},
    )
    async def score(request: Request) -> Response:
        """Score rows: per row the score, flag and p-value (and, with explain, where the error comes from).

        A model trained on windows of w steps reads the rows as one series and returns one result per
        full window (n - w + 1 of them, for rows w-1 ... n-1).
        """
        current = admit(request)
        explain = _flag(request.query_params.get("explain", "false"), "explain")
        raw = await request.body()
        started = time.perf_counter()
        with _unprocessable():
            rows = _body_rows(raw, request, current.contract.names, cfg.max_rows)
            prediction = current.detector.predict(rows)
            results = _rows(prediction.score, prediction.is_anomaly, prediction.p_value)
            if explain:
                _explain(results, current.detector.feature_contributions(rows))
        metrics.observe(time.perf_counter() - started, prediction.score, prediction.is_anomaly)
        payload = {
            "model": holder.registry.model_name,
            "version": current.version,
            "threshold": prediction.threshold,
            "results": results,
        }
        return Response(orjson.dumps(payload), media_type="application/json")

    app.include_router(raw_routes)

    @app.post(
        "/stream/{stream_id}",
        response_model=StreamResponse,
        response_class=Response,
        openapi_extra=BODY | {"security": [{"HTTPBearer": []}]},
    )
    async def stream(request: Request, stream_id: Annotated[str, STREAM_ID]) -> Response:
        """The next observations of a series: smoothed scores and flags of every window they complete.

        The service keeps each stream's last window - 1 observations and its EMA state, so a series can
        arrive a row at a time. Flags compare the smoothed score with a threshold calibrated on smoothed
        held-out scores (same target FPR). A bad body leaves the stream as it was.
        """
        current = admit(request)
        raw = await request.body()
        started = time.perf_counter()
        with _unprocessable():
            rows = _body_rows(raw, request, current.contract.names, cfg.max_rows)
            update = streams.advance(stream_id, current, rows)
        scores = update.scores
        metrics.observe(time.perf_counter() - started, scores.score, scores.is_anomaly)
        payload = {
            "model": holder.registry.model_name,
            "version": current.version,
            "stream_id": stream_id,
            "window": current.detector.config.window,
            "beta": streams.beta,
            "threshold": update.threshold,
            "steps": update.state.steps,
            "results": [
                {"step": t, "score": s, "smoothed": m, "is_anomaly": a}
                for t, s, m, a in zip(
                    scores.step.tolist(),
                    scores.score.tolist(),
                    scores.smoothed.tolist(),
                    scores.is_anomaly.tolist(),
                    strict=True,
                )
            ],
        }
        return Response(orjson.dumps(payload), media_type="application/json")

    @app.delete("/stream/{stream_id}", status_code=204, dependencies=[Depends(authorized)])
    def forget_stream(stream_id: Annotated[str, STREAM_ID]) -> Response:
        """Forget a stream's buffer and smoothing state; 404 when there is none."""
        if not streams.forget(stream_id):
            raise HTTPException(404, f"no stream {stream_id!r}")
        return Response(status_code=204)

    @app.get("/metrics")
    def prometheus() -> Response:
        """Prometheus metrics: requests, latency, rows, alerts, scores."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


@contextlib.contextmanager
def _unprocessable() -> Iterator[None]:
    """Rows the model cannot take (InputError, or what numpy and pandas raise on them) as a one-line 422."""
    try:
        yield
    except (InputError, ValueError, TypeError) as exc:
        raise HTTPException(422, str(exc).splitlines()[0]) from None


def _flag(value: str, name: str) -> bool:
    """A boolean query parameter, spelled as FastAPI accepts them; a 422 otherwise."""
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise HTTPException(422, f"query parameter {name} must be a boolean, got {value!r}")


def _body_rows(
    raw: bytes, request: Request, names: Sequence[str], max_rows: int
) -> np.ndarray | pd.DataFrame:
    """The rows of a /score or /stream body, JSON (any layout) or Arrow; 413 above `max_rows`.

    Raises:
        InputError: not exactly one JSON layout.
    """
    if request.headers.get("content-type", "").startswith(ARROW):
        rows = _arrow_rows(raw, names)
    else:
        rows = _parse(raw).rows(names)  # orjson + one model_validate: cheaper than FastAPI's decoding
    if len(rows) > max_rows:
        raise HTTPException(413, f"{len(rows)} rows in one request; the limit is {max_rows}")
    return rows


def _parse(raw: bytes) -> ScoreRequest:
    """The request body as a ScoreRequest; a 422 naming the first problem otherwise."""
    try:
        return ScoreRequest.model_validate(orjson.loads(raw))
    except orjson.JSONDecodeError as exc:
        raise HTTPException(422, f"body is not valid JSON: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise HTTPException(422, f"{where}: {first['msg']}") from None


def arrow_body(rows: pd.DataFrame) -> bytes:
    """Rows as an Arrow IPC stream, the binary /score body (send it with Content-Type ARROW)."""
    table = pa.Table.from_pandas(rows, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _arrow_rows(raw: bytes, names: Sequence[str]) -> np.ndarray | pd.DataFrame:
    """An Arrow IPC stream body as the rows to score (the binary alternative to a JSON body).

    Every model column present and numeric: a float matrix in `names` order (nulls -> NaN). Otherwise a
    DataFrame, whose problems the detector names. A body that is not an Arrow stream is a 422.
    """
    try:
        table = pa.ipc.open_stream(raw).read_all()
    except (pa.ArrowException, OSError) as exc:
        raise HTTPException(422, f"body is not an Arrow IPC stream: {str(exc).splitlines()[0]}") from None
    types = {field.name: field.type for field in table.schema}
    numeric = all(
        n in types and (pa.types.is_integer(types[n]) or pa.types.is_floating(types[n])) for n in names
    )
    if not numeric or len(types) != table.num_columns:  # a missing or non-numeric column, duplicate names
        return table.to_pandas()
    return np.column_stack([table.column(n).to_numpy(zero_copy_only=False).astype(np.float64) for n in names])


def _rows(score: np.ndarray, flag: np.ndarray, p_value: np.ndarray) -> list[dict[str, Any]]:
    """One result object per row (RowResult's fields), built from the arrays in one pass."""
    return [
        {"score": s, "is_anomaly": a, "p_value": p}
        for s, a, p in zip(score.tolist(), flag.tolist(), p_value.tolist(), strict=True)
    ]


def _explain(rows: list[dict[str, Any]], contributions: pd.DataFrame) -> None:
    """Add each row's reconstruction term and per-feature contributions."""
    names = [str(c) for c in contributions.columns]
    for row, parts in zip(rows, contributions.to_numpy().tolist(), strict=True):
        row["reconstruction"] = sum(parts)
        row["contributions"] = dict(zip(names, parts, strict=True))


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
        self.scores = _ScoreHistogram()
        self.registry.register(self.scores)  # type: ignore[arg-type]

    def observe(self, seconds: float, scores: np.ndarray, flags: np.ndarray) -> None:
        """Count one request: its latency, rows, alerts and scores."""
        self.requests.inc()
        self.latency.observe(seconds)
        self.rows.inc(len(scores))
        self.alerts.inc(int(flags.sum()))
        self.scores.observe(scores)
