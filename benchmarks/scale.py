"""Retrain, batch scoring and the monitor as the window grows, each in its own process: wall and peak RSS.

Issue 16's targets on this 2-core, 24 GB machine: a retrain over 30 day partitions x 1M rows x 20
features within 4 GB peak RSS and 3 minutes, the 7M-row window within 60 s; time outside training per
million rows flat or falling from 0.1M to 30M rows; batch scoring of a 10M-row day and the monitor on a
10M-row window each within 60 s and 3 GB. The peer measured in the same run is the parquet reader
itself: pyarrow reading the same files and nothing else, in a process of its own.

Data: synthetic correlated sensors (4 latent factors mixed into 20 float64 features plus noise), one
parquet file of at most 1M rows per file, written once into a folder lake. Each retrain is a warm start
from the champion: the first trained on two days of the 30-day dataset, then each run's when it
was promoted. The embedded default's temporary Prefect
server starts before the timed call and is reported apart.

Run: .venv/bin/python benchmarks/scale.py   (writes benchmarks/results/scale.md and .json)
     --sizes 0.1,1,7,30 (millions of rows in the window; empty: scoring and monitor only);
     --lake DIR keeps the generated lake there.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from publish import publish  # noqa: E402

N_FEATURES, FILE_ROWS = 20, 1_000_000
TODAY = date(2026, 11, 30)
# window size (millions of rows) -> dataset, days in the window, rows per day
WINDOWS = {0.1: ("w0m1", 7, 14_286), 1.0: ("w1m", 7, 142_858), 7.0: ("big", 7, FILE_ROWS)}
WINDOWS[30.0] = ("big", 30, FILE_ROWS)
BURST = ("burst", 10 * FILE_ROWS)  # one day of 10M rows, for scoring and the monitor
TARGETS = {"retrain_30m_s": 180, "retrain_30m_gb": 4, "retrain_7m_s": 60, "day_10m_s": 60, "day_10m_gb": 3}


def write_days(lake: Path, dataset: str, days: int, rows: int, seed: int) -> None:
    """`days` day partitions ending TODAY of `rows` rows each, files of at most FILE_ROWS rows."""
    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(0).normal(size=(4, N_FEATURES))  # the same sensors in every dataset
    names = [f"f{i:02d}" for i in range(N_FEATURES)]
    for d in range(days):
        folder = lake / dataset / f"date={(TODAY - timedelta(days=days - 1 - d)).isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        for part, start in enumerate(range(0, rows, FILE_ROWS)):
            n = min(FILE_ROWS, rows - start)
            x = np.tanh(rng.normal(size=(n, 4))) @ mixing + 0.1 * rng.normal(size=(n, N_FEATURES))
            pq.write_table(pa.table(dict(zip(names, x.T, strict=True))), folder / f"part-{part}.parquet")


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One job in this process; its wall seconds, peak RSS and what it reports."""
    from flows import runtime
    from flows.settings import Settings

    settings = Settings(
        home=Path(args.home),
        lake={"root": args.lake},
        retrain={"dataset": args.dataset, "window_days": max(2, args.days)},
        monitor={"window_days": 1},
    )
    runtime.configure(settings)
    as_of = TODAY
    if args.child == "pyarrow":
        return _pyarrow(Path(args.lake) / args.dataset, args.days)
    started = time.perf_counter()
    _trivial_flow()
    server = time.perf_counter() - started
    started = time.perf_counter()
    out: dict[str, Any] = {"server_start_s": server}
    if args.child == "retrain":
        from flows.jobs.retrain import retrain

        outcome = retrain(settings=settings, as_of=as_of)
        out |= {"rows": outcome.rows, "steps": outcome.timings, "promoted": outcome.promoted}
    elif args.child == "score":
        from flows.jobs.score import score_day

        scored = score_day(settings, day=as_of)
        out |= {"rows": {"scored": scored.n_rows, "alerts": scored.n_alerts}}
    else:
        from flows.jobs.monitor import monitor

        watched = monitor(settings=settings, as_of=as_of)
        out |= {"rows": {"sampled": int(watched.verdict.features.n_current)}}
    out["wall_s"] = time.perf_counter() - started
    out["rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return out


def _trivial_flow() -> None:
    from prefect import flow

    @flow(name="warm-up")
    def noop() -> int:
        return 1

    noop()


def _pyarrow(dataset: Path, days: int) -> dict[str, Any]:
    """The floor: pyarrow reads the window's files to Arrow and to pandas, nothing else."""
    files = sorted(dataset.glob("date=*/*.parquet"))
    window = {p.parent for p in files}
    files = [p for p in files if p.parent in sorted(window)[-days:]]
    started = time.perf_counter()
    rows = sum(len(pq.read_table(p).to_pandas()) for p in files)
    wall = time.perf_counter() - started
    size = sum(p.stat().st_size for p in files)
    return {"wall_s": wall, "rows": rows, "mb_s": size / 1e6 / wall, "rss_gb": _rss()}


def _rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def run(job: str, home: Path, lake: Path, dataset: str, days: int) -> dict[str, Any]:
    """`job` in a fresh process; exits with its output when it fails."""
    command = [sys.executable, __file__, "--child", job, "--home", str(home), "--lake", str(lake),
               "--dataset", dataset, "--days", str(days)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"{job} on {dataset} ({days} days) failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def report(figures: dict[str, Any]) -> str:
    steps = ("lake", "validation", "sampling", "training", "export", "evaluation", "registry")
    lines = [
        "# scale benchmark: retrain, scoring and monitor as the window grows",
        "",
        f"{figures['machine']}; {figures['when']}; {N_FEATURES} float64 features, files of <= 1M rows, "
        "folder lake, embedded default (Prefect server start excluded), warm start.",
        "",
        "| window rows | wall s | peak RSS GB | "
        + " | ".join(f"{s} s" for s in steps)
        + " | outside training s per M rows | sampled rows | pyarrow alone s | lake+validation / pyarrow |",
        "|---" * (len(steps) + 7) + "|",
    ]
    for size, r in figures["retrain"].items():
        millions = r["rows"]["window"] / 1e6
        outside = (r["wall_s"] - r["steps"].get("training", 0.0)) / millions
        floor = figures["pyarrow"][size]
        ratio = (r["steps"]["lake"] + r["steps"]["validation"]) / floor["wall_s"]
        cells = " | ".join(f"{r['steps'].get(s, 0.0):.1f}" for s in steps)
        lines.append(
            f"| {r['rows']['window']:,} | {r['wall_s']:.1f} | {r['rss_gb']:.2f} | {cells} | {outside:.1f} | "
            f"{r['rows']['sampled']:,} | {floor['wall_s']:.1f} ({floor['mb_s']:.0f} MB/s) | {ratio:.1f} |"
        )
    lines += ["", "| one day of 10M rows | wall s | peak RSS GB | rows |", "|---|---|---|---|"]
    for job in ("score", "monitor"):
        r = figures[job]
        lines.append(f"| `sentinel {job}` | {r['wall_s']:.1f} | {r['rss_gb']:.2f} | {r['rows']} |")
    lines += ["", f"Targets: {figures['targets']}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0.1,1,7,30", help="window sizes, millions of rows")
    parser.add_argument("--lake", help="where the generated lake goes (and is kept); default a temp dir")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    for hidden in ("--home", "--dataset"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--days", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args), default=str))
        return
    sizes = [float(s) for s in args.sizes.split(",") if s]
    with tempfile.TemporaryDirectory(prefix="sentinel-scale-") as top:
        lake = Path(args.lake or Path(top) / "lake")
        home = Path(top) / "home"
        for dataset, days, rows in {WINDOWS[s] for s in sizes} | {(BURST[0], 1, BURST[1])}:
            if not (lake / dataset).exists():  # "big" holds 30 days: its 7-day window is the newest week
                write_days(lake, dataset, 30 if dataset == "big" else days, rows, seed=len(dataset))
        figures: dict[str, Any] = {"retrain": {}, "pyarrow": {}}
        run("retrain", home, lake, "big", 2)  # the first champion (every dataset has the same sensors)
        for size in sizes:
            dataset, days, _ = WINDOWS[size]
            figures["pyarrow"][size] = run("pyarrow", home, lake, dataset, days)
            figures["retrain"][size] = run("retrain", home, lake, dataset, days)
            print(size, figures["retrain"][size], flush=True)
        for derived in ("_scores", "_alerts"):  # an earlier run's scoring, in a kept lake
            shutil.rmtree(lake / BURST[0] / derived, ignore_errors=True)
        for job in ("score", "monitor"):
            figures[job] = run(job, home, lake, BURST[0], 1)
            print(job, figures[job], flush=True)
    figures |= {
        "machine": f"{platform.node()}, {platform.processor() or platform.machine()}, 2 cores",
        "when": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "targets": TARGETS,
    }
    publish(ROOT / "benchmarks" / "results", "scale", report(figures), figures)


if __name__ == "__main__":
    main()
