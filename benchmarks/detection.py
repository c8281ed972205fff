"""Detection benchmark: VAE Sentinel against PyOD's VAE, scikit-learn's IsolationForest and PyOD's KNN.

Protocol (semi-supervised, as in the DTE paper): per seed, half of the normal rows train, the other half
plus every anomaly test. Every method is fitted on the same rows in the same run. Reported per dataset:
AUROC, AUPRC, the false-positive rate realized on the test normals at each method's 1% threshold (ours:
calibrated on held-out normal rows; peers: their `contamination=0.01`), fit seconds and scoring rows/s.
A second table measures batch scoring throughput of a 20-feature model with default sizes.

    python benchmarks/detection.py            # ../shared/datasets/tabular if present, else data/tabular
    python benchmarks/detection.py FOLDER --seeds 5 --no-pyod-vae
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import from_folder, held_out
from publish import publish
from sklearn.ensemble import IsolationForest

from vae import VAEDetector
from vae.evaluation import evaluate_scores, semi_supervised_split

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
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


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run_sentinel(X_train, X_test, y_test, seed) -> list[tuple[str, object, float, float]]:
    det, fit_s = _timed(lambda: VAEDetector(seed=seed, target_fpr=TARGET_FPR).fit(X_train))
    _, score_s = _timed(lambda: det.score(X_test))
    out = []
    for name, alpha in VARIANTS.items():
        if alpha is not None:
            det.set_alpha(alpha)
        pred = det.predict(X_test)
        out.append((name, evaluate_scores(pred.score, pred.is_anomaly, y_test), fit_s, len(X_test) / score_s))
    return out


def run_peer(name, make, X_train, X_test, y_test) -> tuple[str, object, float, float]:
    model, fit_s = _timed(lambda: make().fit(X_train))
    scores, score_s = _timed(lambda: model.decision_function(X_test))
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


def throughput(n_rows: int, with_pyod_vae: bool) -> list[dict[str, object]]:
    """Batch scoring rows/s of a 20-feature model with default sizes, against PyOD's VAE and plain torch."""
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(4, 20))
    X = (rng.normal(size=(n_rows, 4)) @ mix + 0.1 * rng.normal(size=(n_rows, 20))).astype(np.float32)
    det = VAEDetector(seed=0, epochs=5).fit(X[:20_000])
    det.score(X[:100_000])  # warm-up
    out = []
    _, s = _timed(lambda: det.score(X))
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

    _, s = _timed(plain_torch)
    out.append({"method": "plain torch VAE forward (reference)", "rows": n_rows, "rows_per_s": n_rows / s})
    if with_pyod_vae:
        from pyod.models.vae import VAE

        n_small = 100_000
        model = VAE(epoch_num=1, device="cpu", random_state=0, verbose=0).fit(X[:5_000])
        _, s = _timed(lambda: model.decision_function(X[:n_small]))
        out.append({"method": "PyOD VAE decision_function", "rows": n_small, "rows_per_s": n_small / s})
    return out


def markdown(rows: list[Row], speed: list[dict[str, object]]) -> str:
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
        "\n### Batch scoring throughput, 20 features, default sizes\n",
        "| method | rows | rows/s |",
        "|---|---|---|",
    ]
    lines += [f"| {s['method']} | {s['rows']:,} | {s['rows_per_s']:,.0f} |" for s in speed]
    return "\n".join(lines)


def main() -> None:
    default = SHARED / "tabular" if (SHARED / "tabular").is_dir() else ROOT / "data" / "tabular"
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "folder", nargs="?", type=Path, default=default, help="folder of ADBench-style .npz sets"
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
        "--out", type=Path, default=ROOT / "benchmarks" / "results", help="where to write results"
    )
    parser.add_argument(
        "--throughput-only",
        action="store_true",
        help="only the throughput table, written to detection-throughput.md/json",
    )
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    if args.throughput_only:
        speed = throughput(args.throughput_rows, not args.no_pyod_vae)
        publish(args.out, "detection-throughput", markdown([], speed), {"throughput": speed})
        return
    sets = [("public", d) for d in from_folder(args.folder)]
    if not args.no_held_out:
        sets += [("held-out", d) for d in held_out(SHARED if SHARED.is_dir() else None)]
    print(f"{len(sets)} datasets, {args.seeds} seed(s), target FPR {TARGET_FPR:.0%}")
    rows = accuracy_rows(sets, args.seeds, not args.no_pyod_vae)
    speed = throughput(args.throughput_rows, not args.no_pyod_vae)
    publish(
        args.out, "detection", markdown(rows, speed), {"rows": [asdict(r) for r in rows], "throughput": speed}
    )


if __name__ == "__main__":
    main()
