"""The scoring service: FastAPI routes over the registered champion.

Parsing and scoring run in worker threads (one per core), so a large request never stalls the event loop:
/health, /ready and small requests keep answering while it is scored.

Where the rest lives: `champion.py` loads the model and follows the alias, `bodies.py` parses the bodies
and defines the responses, `streams.py` keeps each stream's state, `metrics.py` counts for Prometheus.

Example:
    >>> app = create_app(settings)     # then: uvicorn.run(app) or `sentinel serve`
    >>> # POST /score {"records": [{"s01": 0.1, ...}]} -> {"version": "2", "threshold": ..., "results": [...]}
"""

import contextlib
import gc
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Annotated, Any

import anyio
import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from flows.adapters.connect import registry_of
from flows.adapters.registry import LoadedVersion
from flows.serving.bodies import (
    BODY,
    EXPLAIN,
    STREAM_ID,
    ScoreResponse,
    StreamResponse,
    add_explanations,
    body_rows,
    errors,
    row_results,
)
from flows.serving.champion import ModelHolder
from flows.serving.metrics import Metrics
from flows.serving.stream_file import load_streams, save_streams
from flows.serving.streams import StreamBook
from flows.settings import Settings
from vae.errors import InputError


class RawRoute(APIRoute):
    """A documented route whose endpoint takes the Request and returns the Response itself.

    FastAPI still puts it in the OpenAPI schema, but does not solve parameters or dependencies for it:
    that costs about 0.08 ms a request here, 5% of a 1000-row /score.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The endpoint itself."""
        return self.endpoint


# C901: complexity counts every route below; they are closures over the app's state, each a few lines
def create_app(settings: Settings, holder: ModelHolder | None = None) -> FastAPI:  # noqa: C901
    """The service: /score, /stream, /health, /ready, /metadata, /metrics; OpenAPI at /openapi.json."""
    cfg = settings.serve
    holder = holder or ModelHolder(registry_of(settings))
    metrics = Metrics(lambda: holder.refresh_failures)
    streams = StreamBook(cfg.stream_beta, cfg.max_streams, cfg.stream_gamma)
    workers = anyio.CapacityLimiter(os.cpu_count() or 1)  # scoring threads: one per core

    async def off_loop(work: Callable[..., Response], *args: Any) -> Response:
        """`work(*args)` in a worker thread: the event loop keeps answering other requests meanwhile."""
        return await anyio.to_thread.run_sync(work, *args, limiter=workers)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        streams.restore(load_streams(settings.streams_file()))  # the streams a graceful stop kept
        holder.try_refresh()  # no champion yet: /ready says so, the poller keeps trying
        gc.freeze()  # the libraries' and model's objects: garbage collections stop rescanning them
        poller = threading.Thread(target=holder.follow, args=(cfg.poll_seconds, stop), daemon=True)
        poller.start()
        yield
        stop.set()
        save_streams(settings.streams_file(), streams.snapshot())

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

    @app.get("/ready", responses=errors(503))
    def ready(current: Annotated[LoadedVersion, Depends(model)]) -> dict[str, str]:
        """A champion is loaded."""
        return {"status": "ready", "version": current.version}

    @app.get("/metadata", dependencies=[Depends(authorized)], responses=errors(401, 503))
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
        responses=errors(401, 413, 422, 503),
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
        return await off_loop(scored, raw, request, current, explain)

    def scored(raw: bytes, request: Request, current: LoadedVersion, explain: bool) -> Response:
        """/score's work past the checks: parse, predict, count, answer."""
        started = time.perf_counter()
        with _unprocessable():
            rows = body_rows(raw, request, current.contract.names, cfg.max_rows)
            prediction = current.detector.predict(rows)
            results = row_results(prediction.score, prediction.is_anomaly, prediction.p_value)
            if explain:
                detector = current.detector
                add_explanations(results, detector.feature_contributions(rows), detector.reconstruct(rows))
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
        responses=errors(401, 413, 422, 503),
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
        return await off_loop(streamed, raw, request, current, stream_id)

    def streamed(raw: bytes, request: Request, current: LoadedVersion, stream_id: str) -> Response:
        """/stream's work past the checks: parse, advance the stream (in its turn), count, answer."""
        started = time.perf_counter()
        with _unprocessable():
            rows = body_rows(raw, request, current.contract.names, cfg.max_rows)
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

    @app.delete(
        "/stream/{stream_id}", status_code=204, dependencies=[Depends(authorized)], responses=errors(401, 404)
    )
    def forget_stream(stream_id: Annotated[str, STREAM_ID]) -> Response:
        """Forget a stream's buffer and smoothing state; 404 when there is none."""
        if not streams.forget(stream_id):
            raise HTTPException(404, f"no stream {stream_id!r}")
        return Response(status_code=204)

    @app.get("/metrics", response_class=PlainTextResponse)
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
