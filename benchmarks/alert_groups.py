"""Which representation groups alerts by cause: contribution shares, latent means, or the raw rows?

Issue 19. For each shipped tabular set, a detector is fitted on 70% of its normal rows; copies of the other
normal rows get one of three sensor faults on three different columns (`vae.datasets.inject_faults`:
stuck high, drifting, noisy). The flagged faulty rows are grouped by HDBSCAN (`cluster_rows`, the same
settings for all) on three representations, and each grouping is compared with the true fault by the
adjusted Rand index (ARI, 1 = the faults exactly) and the share of flagged rows left ungrouped. The peer
is the same HDBSCAN on the standardized raw rows (what one would do without a model), and on the
model's latent means.

Run: .venv/bin/python benchmarks/alert_groups.py   (writes benchmarks/results/alert_groups.md and .json)
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasets import RESULTS  # noqa: E402
from publish import markdown_table, publish  # noqa: E402

from vae import VAEDetector  # noqa: E402
from vae.alert_groups import UNGROUPED, cluster_rows, group_alerts  # noqa: E402
from vae.datasets import inject_faults, load_npz  # noqa: E402

KINDS = ("stuck", "drift", "noise")
ROWS_PER_FAULT = 60


def representations(det: VAEDetector, flagged: np.ndarray, train: np.ndarray) -> dict[str, np.ndarray]:
    """HDBSCAN labels of the flagged rows on each representation (shares through `group_alerts`)."""
    contributions = det.feature_contributions(flagged)
    standardized = (flagged - train.mean(axis=0)) / (train.std(axis=0) + 1e-12)
    return {
        "contribution shares (ours)": group_alerts(contributions, det.score(flagged)).labels,
        "latent means": cluster_rows(det.latent_means(flagged)),
        "standardized rows (peer)": cluster_rows(standardized),
    }


def one_set(path: Path, seed: int) -> list[dict[str, object]]:
    data = load_npz(path)
    normal = data.X[data.y == 0]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(normal))
    train, rest = normal[order[: int(0.7 * len(normal))]], normal[order[int(0.7 * len(normal)) :]]
    # well-spread columns (median absolute deviation near the sd: no spike at one value, no heavy tail),
    # where 6 sd is far from every normal row
    spread = np.median(np.abs(train - np.median(train, axis=0)), axis=0) / (train.std(axis=0) + 1e-12)
    columns = np.argsort(-spread)[: len(KINDS)]
    faulty, truth = inject_faults(rest, list(zip(KINDS, columns.tolist(), strict=True)), ROWS_PER_FAULT, seed)
    det = VAEDetector(seed=seed).fit(train)
    flagged = det.predict(faulty).is_anomaly
    rows = []
    for name, labels in representations(det, faulty[flagged], train).items():
        rows.append(
            {
                "set": data.name,
                "representation": name,
                "flagged": f"{flagged.mean():.0%}",
                "ARI": adjusted_rand_score(truth[flagged], labels),
                "groups": len(set(labels.tolist()) - {UNGROUPED}),
                "ungrouped": float(np.mean(labels == UNGROUPED)),
            }
        )
    return rows


def main() -> None:
    started = time.perf_counter()
    rows = [row for path in sorted((ROOT / "data" / "tabular").glob("*.npz")) for row in one_set(path, 0)]
    table = pd.DataFrame(rows)
    mean = table.groupby("representation", sort=False)[["ARI", "ungrouped"]].mean()
    report = "\n".join(
        [
            "# Alert grouping: which representation separates fault types",
            "",
            f"{len(KINDS)} injected faults ({', '.join(KINDS)}) x {ROWS_PER_FAULT} rows per shipped set;"
            " HDBSCAN (`vae.alert_groups.cluster_rows`) on the flagged rows; ARI against the true fault"
            " (1 = exact).",
            f"Machine: {platform.machine()}, {time.perf_counter() - started:.0f} s.",
            "",
            markdown_table(rows),
            "",
            "Mean over sets:",
            "",
            markdown_table(mean.reset_index().to_dict("records")),
        ]
    )
    publish(RESULTS, "alert_groups", report, {"rows": rows, "mean": mean.to_dict()})


if __name__ == "__main__":
    main()
