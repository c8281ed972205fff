"""VAE Sentinel's detector core: a PyTorch VAE anomaly detector with calibrated hybrid scoring.

Pure Python: arrays or DataFrames in, results out; no orchestration, tracking or environment reads.

Example:
    >>> from vae import VAEDetector
    >>> det = VAEDetector(seed=0).fit(X_normal)
    >>> det.predict(X_new).is_anomaly
"""

from vae.config import DetectorConfig, ModelConfig, ScoreConfig, TrainConfig
from vae.detector import Prediction, VAEDetector
from vae.errors import (
    CalibrationError,
    ExportError,
    InputError,
    ModelFileError,
    NotFittedError,
    SentinelError,
    TrainingDivergedError,
)
from vae.streaming import StreamScores, StreamState, advance
from vae.timeseries import ema, to_time_steps, windows
from vae.windowing import Segments

__all__ = [
    "CalibrationError",
    "DetectorConfig",
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
