"""VAE Sentinel's detector core: a PyTorch VAE anomaly detector with calibrated hybrid scoring.

Pure Python: arrays or DataFrames in, results out; no orchestration, tracking or environment reads.

Example:
    >>> from vae import VAEDetector
    >>> det = VAEDetector(seed=0).fit(X_normal)
    >>> det.predict(X_new).is_anomaly
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from vae.config import DetectorConfig, ModelConfig, ScoreConfig, TrainConfig
from vae.errors import (
    CalibrationError,
    ExchangeabilityWarning,
    ExportError,
    InputError,
    ModelFileError,
    NotFittedError,
    SentinelError,
    TrainingDivergedError,
)

if TYPE_CHECKING:
    from vae.detector import Prediction, VAEDetector
    from vae.streaming import Adaptive, StreamScores, StreamState, advance
    from vae.timeseries import ema, to_time_steps, windows
    from vae.windowing import Segments

# Names whose modules import torch load on first use, so that reading the config or the errors (the
# command line's settings and --help) stays fast.
_LAZY = {
    "Prediction": "vae.detector",
    "VAEDetector": "vae.detector",
    "Adaptive": "vae.streaming",
    "StreamScores": "vae.streaming",
    "StreamState": "vae.streaming",
    "advance": "vae.streaming",
    "ema": "vae.timeseries",
    "to_time_steps": "vae.timeseries",
    "windows": "vae.timeseries",
    "Segments": "vae.windowing",
}


__all__ = [
    "Adaptive",
    "CalibrationError",
    "DetectorConfig",
    "ExchangeabilityWarning",
    "ExportError",
    "InputError",
    "ModelConfig",
    "ModelFileError",
    "NotFittedError",
    "Prediction",
    "ScoreConfig",
    "Segments",
    "SentinelError",
    "StreamScores",
    "StreamState",
    "TrainConfig",
    "TrainingDivergedError",
    "VAEDetector",
    "advance",
    "ema",
    "to_time_steps",
    "windows",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vae' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
