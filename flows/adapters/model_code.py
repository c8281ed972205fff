"""The registered model's code (models-from-code: nothing is pickled), logged with every version.

It imports only MLflow and the pure core `vae/`, which is logged beside it (`code_paths`), so a consumer
with the model's own requirements loads `models:/NAME@champion` without this project installed. MLflow
runs this file when it logs or loads the model; nothing else should import it.

Example:
    >>> model = mlflow.pyfunc.load_model("models:/vae-sentinel@champion")
    >>> model.predict(frame)  # DataFrame: score, is_anomaly, p_value per row (per full window)
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

from vae import VAEDetector

DETECTOR_ARTIFACT = "detector"  # the key registry.py logs the saved detector under


class DetectorModel(PythonModel):
    """Scores rows with the detector saved in the model's `detector` artifact."""

    def load_context(self, context: Any) -> None:
        """Load the detector (on the CPU) from the model's artifacts."""
        self.detector = VAEDetector.load(context.artifacts[DETECTOR_ARTIFACT])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Score, anomaly flag (score > calibrated threshold) and conformal p-value per row."""
        return self.detector.predict_frame(model_input)


set_model(DetectorModel())
