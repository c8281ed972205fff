"""Kept for versions registered by 0.1.0: their `model_code.py` imports `flows.pyfunc.DetectorModel`.

Newer versions carry their own model code (`flows/adapters/model_code.py`); keep this shim while such
versions stay registered. Importing model_code registers a model instance with MLflow, as the 0.1.0 model
code itself does next.
"""

from flows.adapters.model_code import DetectorModel

__all__ = ["DetectorModel"]
