"""The registered model: an MLflow pyfunc around a saved `VAEDetector`, returning score and flag.

Example:
    >>> model = mlflow.pyfunc.load_model("models:/vae-sentinel@champion")
    >>> model.predict(frame)  # DataFrame: score, is_anomaly, p_value
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
from mlflow.pyfunc import PythonModel

if TYPE_CHECKING:  # torch loads with the first detector, not with the registry adapter that imports this
    from vae import VAEDetector

DETECTOR_ARTIFACT = "detector"
CONTRACT_ARTIFACT = "contract"


class DetectorModel(PythonModel):
    """Scores rows with the detector saved in the model's `detector` artifact."""

    def load_context(self, context: Any) -> None:
        """Load the detector (on the CPU) from the model's artifacts."""
        from vae import VAEDetector

        self.detector = VAEDetector.load(context.artifacts[DETECTOR_ARTIFACT])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Score, anomaly flag (score > calibrated threshold) and conformal p-value per row."""
        return predict_frame(self.detector, model_input)


def predict_frame(detector: VAEDetector, model_input: pd.DataFrame) -> pd.DataFrame:
    """The registered model's output for `model_input`, computed by `detector`."""
    prediction = detector.predict(model_input)
    return pd.DataFrame(
        {"score": prediction.score, "is_anomaly": prediction.is_anomaly, "p_value": prediction.p_value},
        index=detector.score_index(model_input),
    )
