"""Save and load a detector's config and `FittedState` as a folder: `detector.json` + `weights.safetensors`.

Nothing is unpickled on load, and tensors load on the CPU whatever device trained them. The threshold is
saved as a value and loaded as saved: if this version's calibration would compute another one from the
saved calibration terms, the file is refused rather than served with a threshold that moved silently.

Example:
    >>> save_state(det.config, det.state(), Path("model"))
    >>> det2 = VAEDetector.from_state(*load_state(Path("model")))
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

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
from vae.state import FittedState, calibrated_threshold
from vae.training import EpochStats

FORMAT_VERSION = 1  # files without "threshold" (written before it was saved) still load: it is recomputed
META_FILE, WEIGHTS_FILE = "detector.json", "weights.safetensors"
THRESHOLD_RTOL = 1e-6  # saved vs recomputed threshold: float32 rounding and summation order, nothing more


def save_state(config: DetectorConfig, state: FittedState, folder: Path) -> Path:
    """Write `config` and `state` to `folder` (created if needed); files are written whole, then renamed."""
    pre, vae, scorer = state.preprocessor, state.vae, state.scorer
    tensors = {f"vae.{k}": v.detach().cpu().contiguous() for k, v in vae.state_dict().items()}
    tensors |= {f"scorer.{k}": v.detach().cpu().contiguous() for k, v in scorer.named_buffers()}
    tensors |= {
        "pre.mean": torch.from_numpy(pre.mean),
        "pre.scale": torch.from_numpy(pre.scale),
        "calibration_terms": torch.from_numpy(np.ascontiguousarray(state.calibration_terms)),
    }
    meta = {
        "format_version": FORMAT_VERSION,
        "config": config.model_dump(mode="json"),
        "columns": list(pre.columns) if pre.columns else None,
        "centered_channels": list(pre.centered),
        "hidden_dims": list(vae.hidden_dims),
        "latent_dim": vae.latent_dim,
        "threshold": state.threshold,
        "threshold_fpr": state.threshold_fpr,
        "calibration_runs": list(state.calibration_runs),
        "best_epoch": state.best_epoch,
        "history": [asdict(h) for h in state.history],
        "prefilter": asdict(state.prefilter) if state.prefilter else None,
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


def load_state(folder: Path) -> tuple[DetectorConfig, FittedState]:
    """The config and state saved by `save_state`.

    Raises:
        ModelFileError: a file is missing, unreadable, inconsistent or from an unknown format version, or
            its threshold is not the one this version's calibration computes from its calibration terms.
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
        config, state, recomputed = _rebuild(meta, tensors)
    except (KeyError, RuntimeError, ValidationError, TypeError) as exc:
        raise ModelFileError(
            f"saved detector at {folder} is inconsistent: {str(exc).splitlines()[0]}"
        ) from None
    if not math.isclose(state.threshold, recomputed, rel_tol=THRESHOLD_RTOL, abs_tol=1e-12):
        raise ModelFileError(
            f"saved detector at {folder}: threshold {state.threshold:.9g} recomputed as {recomputed:.9g} "
            "by this version's calibration; refusing to load a threshold that would move silently"
        )
    return config, state


def _rebuild(
    meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> tuple[DetectorConfig, FittedState, float]:
    """The saved config and state, and the threshold this version computes from the saved terms."""
    config = DetectorConfig.model_validate(meta["config"])
    columns = tuple(meta["columns"]) if meta["columns"] else None
    pre = Preprocessor(
        tensors["pre.mean"].numpy(),
        tensors["pre.scale"].numpy(),
        columns,
        config.window,
        tuple(meta.get("centered_channels", [])),  # files from before channels could be centered: none
    )
    vae = VAE.of(config, pre.n_features, tuple(meta["hidden_dims"]), meta["latent_dim"])
    vae.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("vae.")})
    scorer = Scorer(vae, pre, config.score)
    for name, buf in scorer.named_buffers():
        buf.copy_(tensors[f"scorer.{name}"])
    terms = tensors["calibration_terms"].numpy()
    runs = tuple(meta.get("calibration_runs", [len(terms)]))  # files from before runs were kept: one run
    if sum(runs) != len(terms):
        raise RuntimeError(f"calibration runs cover {sum(runs)} scores, the file holds {len(terms)}")
    fpr = meta["threshold_fpr"]
    recomputed = calibrated_threshold(scorer, terms, float(scorer.alpha), fpr, config.score.threshold_method)
    scorer.threshold.fill_(meta.get("threshold", recomputed))  # files from before it was saved: recomputed
    state = FittedState(
        preprocessor=pre,
        vae=vae.eval(),
        scorer=scorer,
        calibration_terms=terms,
        calibration_runs=runs,
        threshold_fpr=fpr,
        history=tuple(EpochStats(**h) for h in meta["history"]),
        best_epoch=meta["best_epoch"],
        prefilter=PrefilterReport(**meta["prefilter"]) if meta["prefilter"] else None,
    )
    return config, state, float(np.float32(recomputed))
