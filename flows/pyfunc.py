"""Kept for versions registered before flows/ had rooms: their `model_code.py` imports this module.

New versions import `flows.adapters.pyfunc`; keep this shim while such versions stay registered.
"""

from flows.adapters.pyfunc import DetectorModel

__all__ = ["DetectorModel"]
