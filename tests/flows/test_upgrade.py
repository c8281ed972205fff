"""What 0.1.0 left behind keeps working after flows/ moved into rooms: registered models and deployments."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from prefect.flows import load_flow_from_entrypoint

from flows.adapters.registry import DETECTOR_ARTIFACT
from flows.jobs.deployments import ENTRYPOINTS
from vae import VAEDetector

ROOT = Path(__file__).resolve().parents[2]
# the model_code.py that versions registered by 0.1.0 carry in their artifacts
MODEL_CODE_0_1 = """from mlflow.models import set_model

from flows.pyfunc import DetectorModel

set_model(DetectorModel())
"""


def test_a_version_registered_by_0_1_still_loads_and_scores(tmp_path, normal_rows, fast_options):
    detector = VAEDetector(**fast_options).fit(normal_rows)
    frame = pd.DataFrame(normal_rows[:20].astype("float64"), columns=[f"x{i}" for i in range(5)])
    old_code = tmp_path / "model_code.py"
    old_code.write_text(MODEL_CODE_0_1)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        experiment = mlflow.create_experiment("upgrade", artifact_location=(tmp_path / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(old_code),
                artifacts={DETECTOR_ARTIFACT: str(detector.save(tmp_path / "detector"))},
            )
        scores = mlflow.pyfunc.load_model(info.model_uri).predict(frame)
    finally:
        mlflow.set_tracking_uri(previous)
    np.testing.assert_allclose(scores["score"].to_numpy(), detector.score(normal_rows[:20]), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(ENTRYPOINTS))
def test_each_deployment_entrypoint_loads_its_flow(name, monkeypatch):
    """What a worker does with a deployment's entrypoint, from the repository root."""
    monkeypatch.chdir(ROOT)
    flow = load_flow_from_entrypoint(ENTRYPOINTS[name], use_placeholder_flow=False)
    assert flow.name == name
