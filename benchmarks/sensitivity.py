"""How much each default matters: mean AUROC of the hybrid score when one option (or a few) changes.

Same protocol and datasets as `detection.py` (semi-supervised split, public and held-out groups), but
only this detector: each variant is fitted with default options plus the given ones, and the table gives
the mean AUROC per group, the change against the defaults, and the total fit seconds. Use it before
changing a default, and to see which options are worth tuning on your own data.

    python benchmarks/sensitivity.py                       # the built-in list of one-option changes
    python benchmarks/sensitivity.py '{"latent_dim": 16}' '{"beta": 0.5, "lr": 0.01}'
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from datasets import RESULTS, default_folder, grouped
from publish import publish
from rich.progress import track
from sklearn.metrics import roc_auc_score

from vae import VAEDetector
from vae.evaluation import semi_supervised_split

VARIANTS: list[dict[str, Any]] = [
    {},
    {"beta": 0.5},
    {"lr": 0.002},
    {"lr": 0.01},
    {"patience": 30},
    {"max_steps": 4000},
    {"batch_size": 64},
    {"noise_std": 0.05},
    {"weight_decay": 0.0001},
    {"free_bits": 0.25},
    {"kl_warmup_epochs": 30},
    {"latent_dim": 16},
    {"hidden_dims": [128, 128]},
    {"hidden_dims": [256, 128]},
    {"reconstruction": "mse"},
    {"latent_term": "nll"},
    {"latent_term": "kl"},
    {"normalization": "zscore"},
    {"transform": "none"},
    {"combine": "product"},
    {"alpha": 0.5},
    # the best single changes together: do their gains add up?
    {"latent_term": "nll", "latent_dim": 16},
    {"latent_term": "nll", "hidden_dims": [256, 128]},
    {"latent_dim": 16, "hidden_dims": [256, 128]},
    {"latent_term": "nll", "weight_decay": 0.0001},
]


def evaluate(options: dict[str, Any], sets: list[tuple[str, Any]], seeds: int) -> dict[str, Any]:
    """Mean AUROC per group (over datasets, each averaged over seeds) and total fit seconds."""
    per_group: dict[str, list[float]] = {}
    fit_s = 0.0
    for group, data in sets:
        aucs = []
        for seed in range(seeds):
            X_train, X_test, y_test = semi_supervised_split(data.X, data.y, seed)
            start = time.perf_counter()
            det = VAEDetector(seed=seed, **options).fit(X_train)
            fit_s += time.perf_counter() - start
            aucs.append(roc_auc_score(y_test, det.score(X_test)))
        per_group.setdefault(group, []).append(float(np.mean(aucs)))
    return {"options": options, "auroc": {g: float(np.mean(v)) for g, v in per_group.items()}, "fit_s": fit_s}


def markdown(results: list[dict[str, Any]]) -> str:
    groups = list(results[0]["auroc"])
    base = results[0]["auroc"]
    lines = [
        "\n### Mean AUROC of the hybrid score per change of options (first row: the defaults)\n",
        "| options | " + " | ".join(f"{g} | change" for g in groups) + " | fit s |",
        "|---" * (2 * len(groups) + 2) + "|",
    ]
    for r in results:
        cells = [f"{r['auroc'][g]:.4f} | {r['auroc'][g] - base[g]:+.4f}" for g in groups]
        label = json.dumps(r["options"]) if r["options"] else "defaults"
        lines.append(f"| `{label}` | " + " | ".join(cells) + f" | {r['fit_s']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "variants",
        nargs="*",
        type=json.loads,
        help="JSON objects of detector options; the defaults are always measured first",
    )
    parser.add_argument(
        "--folder", type=Path, default=default_folder(), help="folder of ADBench-style .npz sets"
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds per dataset (default 3)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write results")
    args = parser.parse_args()
    sets = grouped(args.folder)
    variants = [{}, *[v for v in args.variants if v]] if args.variants else VARIANTS
    results = [evaluate(v, sets, args.seeds) for v in track(variants, description="variants")]
    publish(args.out, "sensitivity", markdown(results), {"results": results})


if __name__ == "__main__":
    main()
