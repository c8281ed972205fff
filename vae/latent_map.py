"""A 2-D map of the latent space: where normal rows sit and where the flagged ones went.

The detector's posterior means (`VAEDetector.latent_means`) of reference normal rows and of flagged rows
are projected together to two dimensions, on seeded samples. PCA by default: linear, so distances from
the normal cloud read true, and it takes milliseconds. t-SNE keeps neighbourhoods (groups stand apart)
but took 6-27 s for 1,300 points on the 2-core test machine; UMAP (umap-learn) was measured and left out:
its numba compilation cost 25 s at the first import and 33 s at the first fit of every new process.
Both sets go through one projection, so their positions compare.

Example:
    >>> m = latent_map(det.latent_means(X_normal), det.latent_means(X_flagged), labels=grouping.labels)
    >>> m.reference.shape, m.flagged.shape
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from vae.errors import InputError

Projection = Literal["tsne", "pca"]


@dataclass(frozen=True)
class LatentMap:
    """2-D points of the sampled reference and flagged rows, the flagged rows' labels and the method."""

    reference: np.ndarray  # (n_reference, 2)
    flagged: np.ndarray  # (n_flagged, 2)
    labels: np.ndarray  # group of each flagged point (-1 = ungrouped)
    method: Projection


def latent_map(
    reference: np.ndarray,
    flagged: np.ndarray,
    labels: np.ndarray | None = None,
    method: Projection = "pca",
    max_points: int = 1500,
    seed: int = 0,
) -> LatentMap:
    """Project reference and flagged latent means to 2-D together (each sampled to `max_points`).

    Raises:
        InputError: no reference rows, mismatched latent sizes, labels of the wrong length, unknown method.
    """
    if len(reference) == 0:
        raise InputError("a latent map needs reference rows")
    if flagged.size and flagged.shape[1] != reference.shape[1]:
        raise InputError(f"latent sizes differ: reference {reference.shape[1]}, flagged {flagged.shape[1]}")
    labels = np.full(len(flagged), -1) if labels is None else np.asarray(labels)
    if len(labels) != len(flagged):
        raise InputError(f"{len(labels)} labels for {len(flagged)} flagged rows")
    rng = np.random.default_rng(seed)
    keep_ref, keep_flag = _sample(len(reference), max_points, rng), _sample(len(flagged), max_points, rng)
    points = np.concatenate([reference[keep_ref], flagged[keep_flag].reshape(-1, reference.shape[1])])
    projected = _project(points.astype(np.float64), method, seed)
    n_ref = len(keep_ref)
    return LatentMap(projected[:n_ref], projected[n_ref:], labels[keep_flag], method)


def _sample(n: int, most: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, most, replace=False)) if n > most else np.arange(n)


def _project(points: np.ndarray, method: Projection, seed: int) -> np.ndarray:
    if points.shape[1] <= 2:  # already a map: pad a 1-D latent with zeros
        return np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(points)
    if method == "tsne":
        perplexity = float(min(30, max(2, (len(points) - 1) // 3)))
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
        return tsne.fit_transform(points)
    raise InputError(f"unknown projection {method!r}; choose 'tsne' or 'pca'")
