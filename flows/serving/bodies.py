"""What the service's endpoints take and return: JSON layouts, Arrow IPC bodies, response models.

A /score or /stream body is JSON in one of four layouts (`ScoreRequest`: ours or MLflow's serving
formats) or an Arrow IPC stream (Content-Type `ARROW`); `body_rows` turns either into the rows to score.

Example:
    >>> rows = body_rows(await request.body(), request, contract.names, max_rows=100_000)
    >>> requests.post(url + "/score", data=arrow_body(frame), headers={"Content-Type": ARROW})
"""

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.ipc
from fastapi import HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vae.errors import InputError

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
EXPLAIN = {  # /score's query parameter, read inline (see `admit` in app.py) and documented here
    "name": "explain",
    "in": "query",
    "required": False,
    "schema": {"type": "boolean", "default": False},
    "description": "Add each row's reconstruction: the values the model rebuilt (beside the input, for "
    "inspection), its error term, and each feature's contribution and share of it.",
}
STREAM_ID = Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$", description="Your series' id.")


class ErrorResponse(BaseModel):
    """What every refusal carries: one line naming the problem."""

    detail: str


_ERRORS = {
    401: "Missing or wrong bearer token (only when serve.token is set).",
    404: "No such stream.",
    413: "Body larger than serve.max_body_bytes, or more rows than serve.max_rows.",
    422: "A body or parameter the model cannot score: wrong or missing columns, NaN, no rows, bad JSON.",
    503: "No champion is registered yet.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` entries of the refusals a route can answer with."""
    return {code: {"model": ErrorResponse, "description": _ERRORS[code]} for code in codes}


class RowResult(BaseModel):
    """One row's verdict; the explanation fields only with ?explain=true."""

    score: float
    is_anomaly: bool
    p_value: float
    reconstruction: float | None = None
    contributions: dict[str, float] | None = None
    shares: dict[str, float] | None = None
    reconstructed: dict[str, float] | None = None


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


def body_rows(raw: bytes, request: Request, names: Sequence[str], max_rows: int) -> np.ndarray | pd.DataFrame:
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


def row_results(score: np.ndarray, flag: np.ndarray, p_value: np.ndarray) -> list[dict[str, Any]]:
    """One result object per row (RowResult's fields), built from the arrays in one pass."""
    return [
        {"score": s, "is_anomaly": a, "p_value": p}
        for s, a, p in zip(score.tolist(), flag.tolist(), p_value.tolist(), strict=True)
    ]


def add_explanations(rows: list[dict[str, Any]], contributions: pd.DataFrame, rebuilt: pd.DataFrame) -> None:
    """Add each row's reconstruction term, per-feature contributions and shares, and rebuilt values."""
    names = [str(c) for c in contributions.columns]
    pairs = zip(contributions.to_numpy().tolist(), rebuilt.to_numpy().tolist(), strict=True)
    for row, (parts, values) in zip(rows, pairs, strict=True):
        total = sum(parts)
        row["reconstruction"] = total
        row["contributions"] = dict(zip(names, parts, strict=True))
        row["shares"] = {
            name: part / total if total > 0 else 0.0 for name, part in zip(names, parts, strict=True)
        }
        row["reconstructed"] = dict(zip(names, values, strict=True))
