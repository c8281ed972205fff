"""Exceptions raised by the detector core: each carries a one-line message that names the problem."""


class SentinelError(Exception):
    """Base class of every error the core raises on purpose."""


class InputError(SentinelError, ValueError):
    """The data given to the detector is unusable (shape, schema, NaN/inf, too few rows...)."""


class NotFittedError(SentinelError, RuntimeError):
    """A method that needs a fitted detector was called before `fit`."""


class TrainingDivergedError(SentinelError, RuntimeError):
    """The training loss became NaN or infinite; no detector is produced."""


class CalibrationError(SentinelError, ValueError):
    """A threshold cannot be calibrated as asked (for example fpr below 1/(n+1))."""


class ModelFileError(SentinelError, ValueError):
    """A saved detector is missing, corrupt, or of an unknown format version."""


class ExportError(SentinelError, RuntimeError):
    """An export failed, or the exported artifact does not score like the detector."""


class ExchangeabilityWarning(UserWarning):
    """The calibration rows drift within themselves: the threshold's FPR range assumes they do not."""
