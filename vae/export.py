"""Export a fitted detector's state to ONNX or TorchScript, with a parity check against its own scorer.

The exported graph takes raw rows (float32, n_samples x n_features, in the detector's column order) and
returns the anomaly score and the flag: preprocessing, normalization, mixing and the threshold are all
inside it. An artifact that does not score like the detector is never written.

Example:
    >>> report = export_state(det.state(), "model.onnx", "onnx", X_holdout)
    >>> report.relative_diff <= report.tolerance
    True
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from vae.errors import ExportError
from vae.state import FittedState

Format = Literal["onnx", "torchscript"]
SUFFIX: dict[str, str] = {"onnx": ".onnx", "torchscript": ".pt"}


class ScoreAndFlag(nn.Module):
    """Raw rows -> (score, score > threshold): everything a consumer needs, in one graph."""

    def __init__(self, centering: nn.Module, scorer: nn.Module) -> None:
        super().__init__()
        self.centering, self.scorer = centering, scorer

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores (n_samples,) and flags (n_samples,) of raw float32 rows (or windows)."""
        score = self.scorer(self.centering(x))
        return score, score > self.scorer.threshold


@dataclass(frozen=True)
class ExportReport:
    """Where the artifact went and how closely it scores like the detector on the check rows."""

    path: Path
    format: str
    n_rows: int
    max_abs_diff: float
    score_scale: float
    tolerance: float

    @property
    def relative_diff(self) -> float:
        """Largest absolute score difference divided by the score scale (largest |score| of the detector)."""
        return self.max_abs_diff / self.score_scale


def export_state(
    state: FittedState, path: str | Path, fmt: Format, X_check: object, tolerance: float = 1e-5
) -> ExportReport:
    """Write `state`'s scorer as ONNX or TorchScript to `path` if the artifact scores like it on `X_check`.

    Args:
        state: a fitted detector's state.
        path: the file to write; it is replaced only after the parity check passes.
        fmt: "onnx" or "torchscript".
        X_check: rows to compare scores on (holdout rows), array or DataFrame.
        tolerance: largest allowed |score difference| / score scale.

    Raises:
        ExportError: the exporter failed, or the artifact's scores differ by more than `tolerance`.
    """
    pre = state.preprocessor
    x = pre.samples(X_check)
    module = ScoreAndFlag(pre.centering(), copy.deepcopy(state.scorer)).eval()
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        _WRITERS[fmt](module, torch.from_numpy(x[: min(len(x), 8)]), tmp)
        exported = _RUNNERS[fmt](tmp, x)
    except Exception as exc:  # exporters raise many types; the message names the format and cause
        tmp.unlink(missing_ok=True)
        raise ExportError(f"{fmt} export failed: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    with torch.inference_mode():
        reference = state.scorer(module.centering(torch.from_numpy(x))).numpy()
    report = ExportReport(
        target,
        fmt,
        len(x),
        float(np.max(np.abs(exported.astype(np.float64) - reference))),
        float(np.max(np.abs(reference))) or 1.0,
        tolerance,
    )
    if not math.isfinite(report.relative_diff) or report.relative_diff > tolerance:
        tmp.unlink(missing_ok=True)
        raise ExportError(
            f"{fmt} parity check failed: max |score diff| {report.max_abs_diff:.3g} is "
            f"{report.relative_diff:.3g} of the score scale (allowed {tolerance:g}); nothing written"
        )
    tmp.replace(target)
    return report


def _write_onnx(module: nn.Module, example: torch.Tensor, out: Path) -> None:
    """TorchScript-based exporter: 0.03 s here against the dynamo exporter's 4 s cold (0.7 s warm)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(out),
            dynamo=False,
            input_names=["x"],
            output_names=["score", "is_anomaly"],
            dynamic_axes={"x": {0: "batch"}, "score": {0: "batch"}, "is_anomaly": {0: "batch"}},
            opset_version=17,
        )


def _run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["score"], {"x": x})[0])


def _write_torchscript(module: nn.Module, example: torch.Tensor, out: Path) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(module, example), str(out))


def _run_torchscript(path: Path, x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        score, _ = torch.jit.load(str(path))(torch.from_numpy(x))
    return score.numpy()


_WRITERS = {"onnx": _write_onnx, "torchscript": _write_torchscript}
_RUNNERS = {"onnx": _run_onnx, "torchscript": _run_torchscript}
