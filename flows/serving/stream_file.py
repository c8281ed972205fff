"""The service's stream states on disk: written when the service stops, read when it starts.

One SQLite file (`serve.streams_file`, default HOME/serve/streams.sqlite) holds each stream's model
version, buffered observations (float32 bytes and their shape), smoothed score, step count, adaptive
threshold level and last timestamp (ISO text); nothing is pickled. A file written before streams kept
their last timestamp loads with none. A graceful stop (SIGTERM) keeps every stream; a crash loses what
changed since the last start. One service per file: several processes sharing a file would overwrite
each other's streams.

Example:
    >>> save_streams(path, book.snapshot())
    >>> book.restore(load_streams(path))
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from vae import StreamState

Saved = list[tuple[str, str, StreamState]]  # (stream id, model version, state), least recently used first
_COLUMNS = (
    "stream_id TEXT, version TEXT, tail BLOB, rows INTEGER, cols INTEGER, smoothed REAL, steps INTEGER, "
    "level REAL, last_time TEXT"
)


def save_streams(path: Path, streams: Saved) -> None:
    """Replace the file's streams with `streams` (written to a temporary file, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(tmp)) as db, db:
        db.execute(f"CREATE TABLE streams ({_COLUMNS})")
        db.executemany(
            "INSERT INTO streams VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    sid,
                    version,
                    s.tail.astype(np.float32).tobytes(),
                    *s.tail.shape,
                    s.smoothed,
                    s.steps,
                    s.level,
                    None if s.last_time is None else s.last_time.isoformat(),
                )
                for sid, version, s in streams
            ],
        )
    tmp.replace(path)


def load_streams(path: Path) -> Saved:
    """The streams saved in `path`, in the order they were saved (none when there is no file)."""
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(path)) as db:
        saved = {row[1] for row in db.execute("PRAGMA table_info(streams)")}
        names = [name.split()[0] for name in _COLUMNS.split(", ")]
        picked = ", ".join(name if name in saved else "NULL" for name in names)
        rows = db.execute(f"SELECT {picked} FROM streams ORDER BY rowid").fetchall()
    return [
        (
            sid,
            version,
            StreamState(
                np.frombuffer(tail, np.float32).reshape(n, m).copy(),
                smoothed,
                steps,
                level,
                None if last_time is None else pd.Timestamp(last_time),
            ),
        )
        for sid, version, tail, n, m, smoothed, steps, level, last_time in rows
    ]
