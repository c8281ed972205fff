"""The file MLflow runs to build the registered model (models-from-code: nothing is pickled).

Only MLflow imports this file, when it logs or loads the model.
"""

from mlflow.models import set_model

from flows.adapters.pyfunc import DetectorModel

set_model(DetectorModel())
