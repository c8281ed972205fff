"""The run manifest: what produced a candidate (data, code, seed, device, libraries) and what it became.

Logged with every candidate as `manifest.json`, so one file answers "can I reproduce this version?".

Example:
    >>> manifest = run_manifest(candidate, window_summary, gates, seed=0, device="auto")
    >>> manifest["code_hash"], manifest["device"]
"""

from __future__ import annotations

import functools
import hashlib
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from vae import VAEDetector
from vae.detector import resolve_device

PACKAGES = ("vae", "validation", "flows")
LIBRARIES = (
    "torch",
    "numpy",
    "pandas",
    "scikit-learn",
    "mlflow",
    "prefect",
    "great_expectations",
    "evidently",
)
_SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the three packages


@functools.cache  # the code a process runs is what it imported: hash it once
def code_hash(root: Path = _SOURCE_ROOT) -> str:
    """SHA-256 over the path and content of every Python file of the project's packages under `root`."""
    digest = hashlib.sha256()
    for path in sorted(p for package in PACKAGES for p in (root / package).rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def device_name(device: str) -> str:
    """The device `device` resolves to here, with the GPU's name: what a detector trained on."""
    resolved = resolve_device(device)
    return (
        f"{resolved} ({torch.cuda.get_device_name(resolved)})" if resolved.type == "cuda" else str(resolved)
    )


def _installed(distribution: str) -> str:
    """The installed version, or "not installed" (a source tree run without `pip install`)."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


def run_manifest(
    candidate: VAEDetector, window: dict[str, Any], gates: list[dict[str, Any]], seed: int, device: str
) -> dict[str, Any]:
    """One candidate's provenance and outcome.

    Args:
        candidate: the fitted detector.
        window: the data window summary (dataset, dates, row counts, content hash).
        gates: the gate report, one dict per gate.
        seed: the detector seed.
        device: the configured device ('auto', 'cpu', 'cuda', ...).
    """
    low, high = candidate.fpr_interval()
    return {
        "data": window,
        "code_hash": code_hash(),
        "vae_sentinel_version": _installed("vae-sentinel"),
        "seed": seed,
        "device": device_name(device),
        "python": platform.python_version(),
        "libraries": {name: _installed(name) for name in LIBRARIES},
        "detector": {
            "threshold": candidate.threshold_,
            "alpha": candidate.alpha_,
            "target_fpr": candidate.threshold_fpr_,
            "fpr_interval_95": [low, high],
            "epochs": len(candidate.history_),
            "best_epoch": candidate.best_epoch_,
        },
        "gates": gates,
    }
