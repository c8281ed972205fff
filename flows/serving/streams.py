"""The scoring service's stream states: one `vae.StreamState` per stream id, bounded and thread-safe.

A stream remembers which model version scored it. When the champion moves, the stream keeps the buffered
observations the new model can use and restarts its smoothing (the new model's scores have another scale).

Example:
    >>> book = StreamBook(beta=0.9, max_streams=1000)
    >>> update = book.advance("pump-7", champion, rows)   # scores of the windows these rows complete
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from flows.adapters.registry import LoadedVersion
from vae import StreamScores, StreamState, advance


@dataclass(frozen=True)
class StreamUpdate:
    """One call's outcome: the new windows' scores, the flag threshold, and the stream's state after it."""

    scores: StreamScores
    threshold: float
    state: StreamState


class StreamBook:
    """Stream id -> (model version, state); the least recently used stream is dropped beyond `max_streams`."""

    def __init__(self, beta: float, max_streams: int) -> None:
        self.beta, self.max_streams = beta, max_streams
        self._states: OrderedDict[str, tuple[str, StreamState]] = OrderedDict()
        self._thresholds: dict[str, float] = {}  # version -> threshold of smoothed scores
        self._lock = threading.Lock()

    def advance(self, stream_id: str, model: LoadedVersion, observations: Any) -> StreamUpdate:
        """Score `observations` as the next rows of the stream; on an error the stream is left as it was.

        Raises:
            InputError: rows the model cannot take.
        """
        detector = model.detector
        with self._lock:
            version, state = self._states.get(stream_id, (model.version, StreamState()))
            if version != model.version:
                state = state.rebase(detector)
            if model.version not in self._thresholds:
                self._thresholds[model.version] = detector.smoothed_threshold(self.beta)
            threshold = self._thresholds[model.version]
            state, scores = advance(detector, state, observations, self.beta, threshold)
            self._states[stream_id] = (model.version, state)
            self._states.move_to_end(stream_id)
            while len(self._states) > self.max_streams:
                self._states.popitem(last=False)
        return StreamUpdate(scores, threshold, state)

    def forget(self, stream_id: str) -> bool:
        """Drop a stream's state; False when there was none."""
        with self._lock:
            return self._states.pop(stream_id, None) is not None
