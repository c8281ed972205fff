"""Batch scoring beside busy neighbours: torch's default thread count against `torch_threads`'s default.

Issue 17 (scenario 16): workers run several flow runs on one host and the service shares its host. Torch's
intra-op threads default to the core count; their OpenMP threads spin-wait, so a busy neighbour on one
core stalls every parallel region. This measures `detector.score` on 1M rows x 20 features, repeated,
in a fresh process per measurement, with 0, 1 and 2 neighbours that each spin one core, and with torch's
threads at the core count (torch's default, the peer: what a flow used before the setting) and at
sentinel's default `torch_threads` (half the cores, at least one). Configurations alternate within each
round, so a change in background load hits all of them alike; the table gives the range over rounds.

Run: .venv/bin/python benchmarks/neighbour.py   (writes benchmarks/results/neighbour.md and .json)
     --rounds N (default 3); --reps N scorings of 1M rows per measurement (default 5).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detection import sensors  # noqa: E402
from publish import publish, timed  # noqa: E402

ROWS, FEATURES = 1_000_000, 20
SPIN = "while True: pass"


def measure(folder: Path, threads: int, reps: int) -> float:
    """Rows/s of `reps` scorings of ROWS rows with `threads` torch threads (median), in this process."""
    import torch

    from vae import VAEDetector

    torch.set_num_threads(threads)
    detector = VAEDetector.load(folder)
    x = sensors(ROWS)
    detector.score(x[:10_000])  # warm-up
    times = [timed(lambda: detector.score(x))[1] for _ in range(reps)]
    return ROWS / float(np.median(times))


@contextmanager
def neighbours(count: int):
    """`count` processes that each keep one core busy."""
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(count)]
    try:
        time.sleep(0.5 if count else 0)
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def run_one(folder: Path, threads: int, reps: int) -> float:
    command = [
        sys.executable,
        __file__,
        "--measure",
        str(folder),
        "--threads",
        str(threads),
        "--reps",
        str(reps),
    ]
    return float(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip())


def fmt(values: list[float]) -> str:
    low, high = min(values) / 1e6, max(values) / 1e6
    return f"{low:.2f}-{high:.2f}" if len(values) > 1 else f"{low:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(measure(args.measure, args.threads, args.reps))
        return

    from flows.settings import Settings
    from vae import VAEDetector

    cores = os.cpu_count() or 1
    configs = {"torch's default (peer)": cores, "sentinel's torch_threads default": Settings().torch_threads}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "detector"
        VAEDetector(seed=0, epochs=5, device="cpu").fit(sensors(50_000)).save(folder)
        results: dict[str, dict[int, list[float]]] = {name: {0: [], 1: [], 2: []} for name in configs}
        for round_ in range(args.rounds):
            for busy in (0, 1, 2):
                for name, threads in configs.items():
                    with neighbours(busy):
                        results[name][busy].append(run_one(folder, threads, args.reps))
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)

    median = {(name, busy): float(np.median(r)) for name in configs for busy, r in results[name].items()}
    lines = [
        "# noisy neighbour: batch scoring throughput beside busy processes",
        "",
        f"Machine: {cores} cores, Python {platform.python_version()}. `detector.score` of {ROWS:,} rows x "
        f"{FEATURES} features (median of {args.reps} per measurement, each in a fresh process), range over "
        f"{args.rounds} alternating rounds, in M rows/s. A neighbour is a process spinning one core.",
        "",
        "| torch threads | alone | 1 busy neighbour | 2 busy neighbours | 1 neighbour / alone |",
        "|---|---|---|---|---|",
    ]
    for name, threads in configs.items():
        r, ratio = results[name], median[name, 1] / median[name, 0]
        lines.append(f"| {name}: {threads} | {fmt(r[0])} | {fmt(r[1])} | {fmt(r[2])} | {ratio:.2f} |")
    peer, ours = configs
    lines += [
        "",
        "Ours / peer (medians): "
        + "; ".join(
            f"{label} {median[ours, busy] / median[peer, busy]:.2f}"
            for busy, label in ((0, "alone"), (1, "beside 1 neighbour"), (2, "beside 2"))
        )
        + ".",
    ]
    figures: dict[str, Any] = {"cores": cores, "configs": configs, "rows_per_s": results}
    publish(ROOT / "benchmarks" / "results", "neighbour", "\n".join(lines), figures)


if __name__ == "__main__":
    main()
