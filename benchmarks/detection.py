"""Detection benchmark: VAE Sentinel against PyOD's VAE, scikit-learn's IsolationForest and PyOD's KNN.

Protocol (semi-supervised, as in the DTE paper): per seed, half of the normal rows train, the other half
plus every anomaly test. Every method is fitted on the same rows in the same run. Reported per dataset:
AUROC, AUPRC, the false-positive rate realized on the test normals at each method's 1% threshold (ours:
calibrated on held-out normal rows; peers: their `contamination=0.01`), fit seconds and scoring rows/s.
Two more tables use synthetic correlated 20-feature rows: fit seconds against PyOD's VAE as the training
set grows (the issue's reference size is 50k rows), and batch scoring throughput with default sizes.

    python benchmarks/detection.py            # ../shared/datasets/tabular if present, else data/tabular
    python benchmarks/detection.py FOLDER --seeds 5 --no-pyod-vae
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from datasets import RESULTS, default_folder, grouped
from publish import publish, timed
from sklearn.ensemble import IsolationForest

from vae import VAEDetector
from vae.evaluation import evaluate_scores, semi_supervised_split

TARGET_FPR = 0.01
VARIANTS = {"sentinel hybrid": None, "sentinel recon-only": 1.0, "sentinel latent-only": 0.0}


@dataclass(frozen=True)
class Row:
    """One method on one dataset and seed."""

    dataset: str
    group: str
    method: str
    seed: int
    auroc: float
    auprc: float
    fpr: float
    fit_s: float
    rows_per_s: float


def run_sentinel(X_train, X_test, y_test, seed) -> list[tuple[str, object, float, float]]:
    det, fit_s = timed(lambda: VAEDetector(seed=seed, target_fpr=TARGET_FPR).fit(X_train))
    _, score_s = timed(lambda: det.score(X_test))
    out = []
    for name, alpha in VARIANTS.items():
        if alpha is not None:
            det.set_alpha(alpha)
        pred = det.predict(X_test)
        out.append((name, evaluate_scores(pred.score, pred.is_anomaly, y_test), fit_s, len(X_test) / score_s))
    return out


def run_peer(name, make, X_train, X_test, y_test) -> tuple[str, object, float, float]:
    model, fit_s = timed(lambda: make().fit(X_train))
    scores, score_s = timed(lambda: model.decision_function(X_test))
    if isinstance(model, IsolationForest):  # sklearn: higher = more normal
        scores, flags = -scores, model.predict(X_test) == -1
    else:
        flags = model.predict(X_test) == 1
    return name, evaluate_scores(np.asarray(scores), flags, y_test), fit_s, len(X_test) / score_s


def peers(seed: int, with_pyod_vae: bool) -> dict[str, Callable[[], object]]:
    from pyod.models.knn import KNN
    from pyod.models.vae import VAE

    makers: dict[str, Callable[[], object]] = {
        "IsolationForest": lambda: IsolationForest(contamination=TARGET_FPR, random_state=seed),
        "PyOD KNN": lambda: KNN(contamination=TARGET_FPR),
    }
    if with_pyod_vae:
        makers["PyOD VAE"] = lambda: VAE(contamination=TARGET_FPR, device="cpu", random_state=seed, verbose=0)
    return makers


def accuracy_rows(sets, seeds: int, with_pyod_vae: bool) -> list[Row]:
    rows = []
    for group, data in sets:
        for seed in range(seeds):
            X_train, X_test, y_test = semi_supervised_split(data.X, data.y, seed)
            results = run_sentinel(X_train, X_test, y_test, seed)
            results += [
                run_peer(n, m, X_train, X_test, y_test) for n, m in peers(seed, with_pyod_vae).items()
            ]
            for method, rep, fit_s, rps in results:
                rows.append(
                    Row(data.name, group, method, seed, rep.auroc, rep.auprc, rep.realized_fpr, fit_s, rps)
                )
            print(
                f"  {data.name} seed {seed}: " + ", ".join(f"{m} {r.auroc:.3f}" for m, r, *_ in results),
                flush=True,
            )
    return rows


def sensors(n_rows: int) -> np.ndarray:
    """Synthetic normal rows: 20 correlated features driven by 4 factors, plus noise (float32)."""
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(4, 20))
    return (rng.normal(size=(n_rows, 4)) @ mix + 0.1 * rng.normal(size=(n_rows, 20))).astype(np.float32)


def fit_scaling(sizes: list[int], with_pyod_vae: bool) -> list[dict[str, object]]:
    """Fit seconds with default options on `sizes` rows x 20 features: ours, and PyOD's VAE when asked."""
    out = []
    for n_rows in sizes:
        X = sensors(n_rows)
        row: dict[str, object] = {"rows": n_rows, "sentinel_s": timed(partial(VAEDetector(seed=0).fit, X))[1]}
        if with_pyod_vae:
            from pyod.models.vae import VAE

            row["pyod_vae_s"] = timed(partial(VAE(device="cpu", random_state=0, verbose=0).fit, X))[1]
        print(
            f"  fit on {n_rows:,} x 20: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items() if k != "rows")
        )
        out.append(row)
    return out


def throughput(n_rows: int, with_pyod_vae: bool) -> list[dict[str, object]]:
    """Batch scoring rows/s of a 20-feature model with default sizes, against PyOD's VAE and plain torch."""
    X = sensors(n_rows)
    det = VAEDetector(seed=0, epochs=5).fit(X[:20_000])
    det.score(X[:100_000])  # warm-up
    out = []
    _, s = timed(lambda: det.score(X))
    out.append(
        {
            "method": "sentinel score (preprocessing + both terms + mix)",
            "rows": n_rows,
            "rows_per_s": n_rows / s,
        }
    )
    vae, pre = det.vae_, det.preprocessor_

    def plain_torch() -> None:  # the same MLP, eager: standardize, encode, decode at mu, squared error
        with torch.inference_mode():
            for chunk in torch.from_numpy(X).split(8192):
                z = (chunk - torch.from_numpy(pre.mean)) / torch.from_numpy(pre.scale)
                mu, _ = vae.encode(z)
                (z - vae.decode(mu)).pow(2).sum(1)

    _, s = timed(plain_torch)
    out.append({"method": "plain torch VAE forward (reference)", "rows": n_rows, "rows_per_s": n_rows / s})
    if with_pyod_vae:
        from pyod.models.vae import VAE

        n_small = 100_000
        model = VAE(epoch_num=1, device="cpu", random_state=0, verbose=0).fit(X[:5_000])
        _, s = timed(lambda: model.decision_function(X[:n_small]))
        out.append({"method": "PyOD VAE decision_function", "rows": n_small, "rows_per_s": n_small / s})
    return out


def markdown(rows: list[Row], scaling: list[dict[str, object]], speed: list[dict[str, object]]) -> str:
    methods = list(dict.fromkeys(r.method for r in rows))
    datasets = list(dict.fromkeys((r.group, r.dataset) for r in rows))
    mean = lambda vals: float(np.mean(vals))  # noqa: E731

    def cell(group, dataset, method, field):
        return mean(
            [getattr(r, field) for r in rows if (r.group, r.dataset, r.method) == (group, dataset, method)]
        )

    lines = []
    tables = [
        ("auroc", "{:.3f}", "AUROC"),
        ("auprc", "{:.3f}", "AUPRC"),
        ("fpr", "{:.2%}", "realized FPR at target 1%"),
        ("fit_s", "{:.2f}", "fit seconds"),
        ("rows_per_s", "{:,.0f}", "scoring rows/s (test set)"),
    ]
    for field, fmt, title in tables if rows else []:
        lines += [
            f"\n### {title} (mean over seeds)\n",
            "| dataset | " + " | ".join(methods) + " |",
            "|---" * (len(methods) + 1) + "|",
        ]
        for group, dataset in datasets:
            vals = [fmt.format(cell(group, dataset, m, field)) for m in methods]
            lines.append(f"| {dataset} | " + " | ".join(vals) + " |")
        if field in ("auroc", "auprc"):
            for group in dict.fromkeys(g for g, _ in datasets):
                names = [d for g, d in datasets if g == group]
                vals = [fmt.format(mean([cell(group, d, m, field) for d in names])) for m in methods]
                lines.append(f"| **mean, {group}** | " + " | ".join(vals) + " |")
    lines += [
        "\n### Fit seconds as the training set grows, 20 features, default options\n",
        "| rows | sentinel | PyOD VAE | ratio |",
        "|---|---|---|---|",
    ]
    for f in scaling:
        peer = f.get("pyod_vae_s")
        ratio = f"{f['sentinel_s'] / peer:.3f}" if peer else ""
        lines.append(f"| {f['rows']:,} | {f['sentinel_s']:.2f} | {f'{peer:.2f}' if peer else ''} | {ratio} |")
    lines += [
        "\n### Batch scoring throughput, 20 features, default sizes\n",
        "| method | rows | rows/s |",
        "|---|---|---|",
    ]
    lines += [f"| {s['method']} | {s['rows']:,} | {s['rows_per_s']:,.0f} |" for s in speed]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "folder", nargs="?", type=Path, default=default_folder(), help="folder of ADBench-style .npz sets"
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds per dataset (default 3)")
    parser.add_argument(
        "--no-held-out", action="store_true", help="skip the second group of sets (sklearn, SKAB)"
    )
    parser.add_argument(
        "--no-pyod-vae", action="store_true", help="skip PyOD's VAE (slow: ~2 min per 50k rows)"
    )
    parser.add_argument(
        "--throughput-rows", type=int, default=2_000_000, help="rows for the throughput table"
    )
    parser.add_argument(
        "--fit-sizes",
        type=lambda text: [int(v) for v in text.split(",")],
        default=[5_000, 20_000, 50_000],
        help="comma-separated row counts for the fit-seconds table (default 5000,20000,50000)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write results")
    parser.add_argument(
        "--speed-only",
        action="store_true",
        help="only the fit-seconds and throughput tables, written to detection-speed.md/json",
    )
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    with_pyod_vae = not args.no_pyod_vae
    rows = []
    if not args.speed_only:
        sets = grouped(args.folder, not args.no_held_out)
        print(f"{len(sets)} datasets, {args.seeds} seed(s), target FPR {TARGET_FPR:.0%}")
        rows = accuracy_rows(sets, args.seeds, with_pyod_vae)
    scaling = fit_scaling(args.fit_sizes, with_pyod_vae)
    speed = throughput(args.throughput_rows, with_pyod_vae)
    results = {"rows": [asdict(r) for r in rows], "fit_scaling": scaling, "throughput": speed}
    name = "detection-speed" if args.speed_only else "detection"
    publish(args.out, name, markdown(rows, scaling, speed), results)


if __name__ == "__main__":
    main()
