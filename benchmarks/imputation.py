"""Missing values filled through the decoder (`VAEDetector.impute`) against mean and iterative imputation.

Issue 19. For each shipped tabular set, a detector is fitted on 70% of its normal rows; in the other normal
rows a share of the values is removed at random (missing completely at random), and each method fills them.
RMSE over the removed values, in units of each column's standard deviation (so sets compare), for: the
training means, scikit-learn's `IterativeImputer` (the peer, fitted on the same training rows) and ours.

Run: .venv/bin/python benchmarks/imputation.py   (writes benchmarks/results/imputation.md and .json)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from sklearn.experimental import enable_iterative_imputer  # noqa: F401  (makes IterativeImputer importable)
from sklearn.impute import IterativeImputer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasets import RESULTS  # noqa: E402
from publish import markdown_table, publish  # noqa: E402

from vae import VAEDetector  # noqa: E402
from vae.datasets import load_npz  # noqa: E402

MISSING_SHARES = (0.1, 0.3)


def rmse(filled: np.ndarray, truth: np.ndarray, missing: np.ndarray, sd: np.ndarray) -> float:
    return float(np.sqrt(np.mean(((filled - truth) / sd)[missing] ** 2)))


def one_set(path: Path, seed: int = 0) -> list[dict[str, object]]:
    data = load_npz(path)
    normal = data.X[data.y == 0]
    order = np.random.default_rng(seed).permutation(len(normal))
    cut = int(0.7 * len(normal))
    train, test = normal[order[:cut]], normal[order[cut:]]
    sd = train.std(axis=0) + 1e-12
    started = time.perf_counter()
    det = VAEDetector(seed=seed).fit(train)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    peer = IterativeImputer(random_state=seed, max_iter=10).fit(train)
    peer_fit_s = time.perf_counter() - started
    rows = []
    for share in MISSING_SHARES:
        missing = np.random.default_rng(seed + 1).uniform(size=test.shape) < share
        missing[missing.all(axis=1), 0] = False  # every row keeps one observed value
        holed = np.where(missing, np.nan, test)
        started = time.perf_counter()
        ours = np.asarray(det.impute(holed), dtype=np.float64)
        ours_s = time.perf_counter() - started
        started = time.perf_counter()
        theirs = peer.transform(holed)
        theirs_s = time.perf_counter() - started
        means = np.where(missing, train.mean(axis=0), test)
        rows.append(
            {
                "set": data.name,
                "missing": f"{share:.0%}",
                "values": int(missing.sum()),
                "mean RMSE": rmse(means, test, missing, sd),
                "IterativeImputer RMSE": rmse(theirs, test, missing, sd),
                "VAE RMSE (ours)": rmse(ours, test, missing, sd),
                "ours / mean": rmse(ours, test, missing, sd) / rmse(means, test, missing, sd),
                "ours / Iterative": rmse(ours, test, missing, sd) / rmse(theirs, test, missing, sd),
                "fit s (ours/peer)": f"{fit_s:.1f} / {peer_fit_s:.1f}",
                "fill s (ours/peer)": f"{ours_s:.2f} / {theirs_s:.2f}",
            }
        )
    return rows


def main() -> None:
    rows = [row for path in sorted((ROOT / "data" / "tabular").glob("*.npz")) for row in one_set(path)]
    report = "\n".join(
        [
            "# Imputation: decoder (ours) vs training means vs IterativeImputer",
            "",
            "Normal rows, 70% to fit, values removed at random from the other 30%;"
            " RMSE over the removed values in units of each column's sd (lower is better).",
            "",
            markdown_table(rows),
        ]
    )
    publish(RESULTS, "imputation", report, {"rows": rows})


if __name__ == "__main__":
    main()
