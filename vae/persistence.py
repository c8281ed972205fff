"""Save and load detectors as a folder: `detector.json` (config, contract, history) + `weights.safetensors`.

Nothing is unpickled on load, and tensors load on the CPU whatever device trained them.

Example:
    >>> save_detector(det, Path("model"))
    >>> det2 = load_detector(VAEDetector, Path("model"))
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vae.config import DetectorConfig
from vae.errors import ModelFileError
from vae.model import VAE
from vae.prefilter import PrefilterReport
from vae.preprocessing import Preprocessor
from vae.scoring import Scorer
from vae.training import EpochStats

if TYPE_CHECKING:
    from vae.detector import VAEDetector

FORMAT_VERSION = 1
META_FILE, WEIGHTS_FILE = "detector.json", "weights.safetensors"
D = TypeVar("D", bound="VAEDetector")


def save_detector(det: VAEDetector, folder: Path) -> Path:
    """Write `det` to `folder` (created if needed); files are written whole, then renamed into place."""
    pre, vae, scorer = det._fitted()
    assert det.calibration_terms_ is not None
    tensors = {f"vae.{k}": v.detach().cpu().contiguous() for k, v in vae.state_dict().items()}
    tensors |= {f"scorer.{k}": v.detach().cpu().contiguous() for k, v in scorer.named_buffers()}
    tensors |= {
        "pre.mean": torch.from_numpy(pre.mean),
        "pre.scale": torch.from_numpy(pre.scale),
        "calibration_terms": torch.from_numpy(np.ascontiguousarray(det.calibration_terms_)),
    }
    meta = {
        "format_version": FORMAT_VERSION,
        "config": det.config.model_dump(mode="json"),
        "columns": list(pre.columns) if pre.columns else None,
        "hidden_dims": list(vae.hidden_dims),
        "latent_dim": vae.latent_dim,
        "threshold_fpr": det.threshold_fpr_,
        "calibration_runs": list(det.calibration_runs_),
        "best_epoch": det.best_epoch_,
        "history": [asdict(h) for h in det.history_],
        "prefilter": asdict(det.prefilter_) if det.prefilter_ else None,
        "torch_version": torch.__version__,
    }
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomic(folder / WEIGHTS_FILE, lambda tmp: save_file(tensors, str(tmp)))
    _write_atomic(folder / META_FILE, lambda tmp: tmp.write_text(json.dumps(meta, indent=2)))
    return folder


def _write_atomic(target: Path, write: Any) -> None:
    tmp = target.with_name(target.name + ".tmp")
    write(tmp)
    tmp.replace(target)


def load_detector(cls: type[D], folder: Path) -> D:
    """Rebuild a detector saved by `save_detector`.

    Raises:
        ModelFileError: a file is missing, unreadable, or from an unknown format version.
    """
    try:
        meta = json.loads((folder / META_FILE).read_text())
        tensors = load_file(str(folder / WEIGHTS_FILE), device="cpu")
    except FileNotFoundError as exc:
        raise ModelFileError(f"no saved detector at {folder}: {Path(exc.filename).name} is missing") from None
    except (json.JSONDecodeError, SafetensorError, OSError) as exc:
        raise ModelFileError(f"saved detector at {folder} is corrupt: {exc}") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"saved detector at {folder} has format {meta.get('format_version')}, "
            f"this version reads {FORMAT_VERSION}"
        )
    try:
        return _rebuild(cls, meta, tensors)
    except (KeyError, RuntimeError, ValidationError, TypeError) as exc:
        raise ModelFileError(
            f"saved detector at {folder} is inconsistent: {str(exc).splitlines()[0]}"
        ) from None


def _rebuild(cls: type[D], meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> D:
    config = DetectorConfig.model_validate(meta["config"])
    det = cls(config)
    columns = tuple(meta["columns"]) if meta["columns"] else None
    pre = Preprocessor(tensors["pre.mean"].numpy(), tensors["pre.scale"].numpy(), columns, config.window)
    m = config.model
    vae = VAE(
        pre.n_features,
        tuple(meta["hidden_dims"]),
        meta["latent_dim"],
        learn_variance=m.reconstruction == "gaussian_nll",
    )
    vae.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("vae.")})
    scorer = Scorer(vae, pre, config.score)
    for name, buf in scorer.named_buffers():
        buf.copy_(tensors[f"scorer.{name}"])
    det.preprocessor_, det.vae_, det.scorer_ = pre, vae.eval(), scorer
    det.history_ = tuple(EpochStats(**h) for h in meta["history"])
    det.best_epoch_ = meta["best_epoch"]
    det.prefilter_ = PrefilterReport(**meta["prefilter"]) if meta["prefilter"] else None
    # calibration scores and threshold are derived from the saved terms, exactly as when they were set
    terms = tensors["calibration_terms"].numpy()
    runs = tuple(meta.get("calibration_runs", [len(terms)]))  # files from before runs were kept: one run
    if sum(runs) != len(terms):
        raise RuntimeError(f"calibration runs cover {sum(runs)} scores, the file holds {len(terms)}")
    det._calibrate(scorer, terms, float(scorer.alpha), meta["threshold_fpr"], runs)
    return det
