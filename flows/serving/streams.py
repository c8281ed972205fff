"""The scoring service's stream states: one `vae.StreamState` per stream id, bounded and thread-safe.

Calls for one stream take turns (one lock per stream id, held while its rows are scored), so a stream's
observations stay in order; calls for different streams run at the same time.

A stream remembers which model version scored it. When the champion moves, the stream keeps the buffered
observations the new model can use and restarts its smoothing (the new model's scores have another scale).

Example:
    >>> book = StreamBook(beta=0.9, max_streams=1000)
    >>> update = book.advance("pump-7", champion, rows)   # scores of the windows these rows complete
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flows.adapters.registry import LoadedVersion
from vae import Adaptive, StreamScores, StreamState, advance


@dataclass(frozen=True)
class StreamUpdate:
    """One call's outcome: the new windows' scores, the flag threshold, and the stream's state after it."""

    scores: StreamScores
    threshold: float
    state: StreamState


@dataclass
class _Turn:
    """One stream's lock and the number of calls holding or waiting for it (the lock goes at zero)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0


class StreamBook:
    """Stream id -> (model version, state); the least recently used stream is dropped beyond `max_streams`."""

    def __init__(self, beta: float, max_streams: int, gamma: float | None = None) -> None:
        self.beta, self.max_streams, self.gamma = beta, max_streams, gamma
        self._states: OrderedDict[str, tuple[str, StreamState]] = OrderedDict()
        self._rules: dict[str, tuple[float, Adaptive | None]] = {}  # version -> how smoothed scores flag
        self._turns: dict[str, _Turn] = {}  # stream id -> its lock, only while calls for it are in flight
        self._lock = threading.Lock()  # guards the three dicts, never held while scoring

    def advance(self, stream_id: str, model: LoadedVersion, observations: Any) -> StreamUpdate:
        """Score `observations` as the next rows of the stream; on an error the stream is left as it was.

        Raises:
            InputError: rows the model cannot take.
        """
        detector = model.detector
        with self._turn(stream_id):
            with self._lock:
                version, state = self._states.get(stream_id, (model.version, StreamState()))
                rule = self._rules.get(model.version)
            if version != model.version:
                state = state.rebase(detector)
            if rule is None:
                rule = self._rule(model)
                with self._lock:
                    self._rules[model.version] = rule
            threshold, adaptive = rule
            state, scores = advance(detector, state, observations, self.beta, threshold, adaptive)
            with self._lock:
                self._states[stream_id] = (model.version, state)
                self._states.move_to_end(stream_id)
                while len(self._states) > self.max_streams:
                    self._states.popitem(last=False)
        in_force = threshold if adaptive is None else adaptive.threshold(state.level)
        return StreamUpdate(scores, in_force, state)

    def _rule(self, model: LoadedVersion) -> tuple[float, Adaptive | None]:
        """A version's fixed threshold of smoothed scores, and its adaptive rule when `gamma` is set."""
        detector = model.detector
        if self.gamma is None:
            return detector.smoothed_threshold(self.beta), None
        calibration = detector.smoothed_calibration(self.beta)
        return detector.smoothed_threshold(self.beta), Adaptive(
            calibration, detector.threshold_fpr_, self.gamma
        )

    def snapshot(self) -> list[tuple[str, str, StreamState]]:
        """Every stream's (id, model version, state), least recently used first."""
        with self._lock:
            return [(sid, version, state) for sid, (version, state) in self._states.items()]

    def restore(self, streams: list[tuple[str, str, StreamState]]) -> None:
        """Take back streams a `snapshot` saved (oldest first), within `max_streams`."""
        with self._lock:
            for sid, version, state in streams[-self.max_streams :]:
                self._states[sid] = (version, state)

    def forget(self, stream_id: str) -> bool:
        """Drop a stream's state (after the calls for it already in flight); False when there was none."""
        with self._turn(stream_id), self._lock:
            return self._states.pop(stream_id, None) is not None

    @contextmanager
    def _turn(self, stream_id: str) -> Iterator[None]:
        """Hold the stream's lock: calls for one stream run one at a time."""
        with self._lock:
            turn = self._turns.setdefault(stream_id, _Turn())
            turn.users += 1
        try:
            with turn.lock:
                yield
        finally:
            with self._lock:
                turn.users -= 1
                if turn.users == 0:
                    del self._turns[stream_id]
