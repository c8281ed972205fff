"""The scoring service under load, its champion swapped half-way; `mlflow models serve` under the same load.

Issue 17 (scenario 11): 64 concurrent clients on loopback for 60 s, mixed 1-row and 1,000-row requests
(9 to 1), the champion moved in the middle: zero 5xx, zero dropped requests, p50/p99 reported. The load
is Locust (benchmarks/load/locustfile.py, headless, in its own process). The peer, measured in the same
run with the same bodies (MLflow's `dataframe_split`) and the same users: `mlflow models serve` of the same
registered model, one uvicorn worker as ours. MLflow's server loads the model once and cannot follow the
alias, so only ours gets the swap.

Setup: `sentinel demo` in a temporary SENTINEL_HOME (as benchmarks/serving.py); rows from its lake.

Run: .venv/bin/python benchmarks/load.py   (writes benchmarks/results/load.md and .json)
     --users N (64), --seconds S (60), --demo-home PATH reuses a demo folder.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from publish import publish  # noqa: E402
from serving import lake_rows, run_demo, servers, split_body  # noqa: E402

from tests.load import LoadStats, run_locust, wait_stats  # noqa: E402

MODEL = "vae-sentinel"
COLUMNS = ("Request Count", "Failure Count", "Requests/s", "50%", "99%", "Max Response Time")


def swap_midway(url: str, tracking_uri: str, after_s: float, seen: dict[str, Any]) -> threading.Thread:
    """After `after_s`, move the champion to another version; record when ours answered with it."""

    def swap() -> None:
        client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
        time.sleep(after_s)
        current = client.get_model_version_by_alias(MODEL, "champion").version
        target = next(
            v.version for v in client.search_model_versions(f"name='{MODEL}'") if v.version != current
        )
        client.set_registered_model_alias(MODEL, "champion", target)
        moved = time.perf_counter()
        while httpx.get(f"{url}/ready", timeout=10).json()["version"] != str(target):
            time.sleep(0.05)
        seen.update(swapped_from=current, swapped_to=target, switch_s=time.perf_counter() - moved)

    thread = threading.Thread(target=swap)
    thread.start()
    return thread


def row(name: str, stats: LoadStats, kind: str) -> str:
    r = stats.rows[kind]
    return (
        f"| {name} | {kind} | {r['Request Count']:,.0f} | {r['Failure Count']:.0f} | {r['Requests/s']:.1f} | "
        f"{r['50%']:.0f} | {r['99%']:.0f} | {r['Max Response Time']:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--demo-home", type=Path, help="Reuse this demo folder instead of running the demo.")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sentinel-load-"))
    if args.demo_home:
        demo_home = Path(shutil.copytree(args.demo_home, workdir / "demo-copy"))
    else:
        demo_home = run_demo(workdir / "home", workdir)
    rows = lake_rows(demo_home)
    bodies = {"small": split_body(rows.head(1)).decode(), "large": split_body(rows.head(1000)).decode()}
    tracking_uri = f"sqlite:///{demo_home / 'mlflow.db'}"
    results: dict[str, LoadStats] = {}
    seen: dict[str, Any] = {"load_before": os.getloadavg()}
    with servers(demo_home, workdir, threads=None) as (ours, mlflow_server):
        for server in (mlflow_server, ours):
            folder = workdir / server.name
            locust = run_locust(
                server.base_url, bodies, args.users, args.seconds, folder, path=server.score_path
            )
            swapper = (
                swap_midway(ours.base_url, tracking_uri, args.seconds / 2, seen) if server is ours else None
            )
            results[server.name] = wait_stats(locust, folder, timeout=args.seconds + 120)
            if swapper:
                swapper.join()
            print(f"{server.name}: {results[server.name].rows['Aggregated']['Request Count']:.0f} requests")
    seen["load_after"] = os.getloadavg()

    ours_total, peer_total = results["ours"].rows["Aggregated"], results["mlflow"].rows["Aggregated"]
    lines = [
        "# load: 64 concurrent clients, mixed request sizes, a champion swap",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; 1-minute load average "
        f"{seen['load_before'][0]:.2f} before, {seen['load_after'][0]:.2f} after. Locust (headless, one "
        f"process on the same machine): {args.users} users, no think time, {args.seconds} s per server, 9 "
        "one-row requests to 1 of 1,000 rows (`dataframe_split` JSON). Both servers one uvicorn worker on "
        f"loopback, the demo's champion; ours moved from version {seen.get('swapped_from')} to "
        f"{seen.get('swapped_to')} half-way and answered with it {seen.get('switch_s', float('nan')):.1f} s "
        "later (serve.poll_seconds 10).",
        "",
        "| server | requests | count | failed | req/s | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, label in (("ours", "ours (`sentinel serve`)"), ("mlflow", "MLflow (`mlflow models serve`)")):
        lines += [row(label, results[name], kind) for kind in ("small", "large", "Aggregated")]
    lines += [
        "",
        f"Ours / MLflow: requests/s {ours_total['Requests/s'] / peer_total['Requests/s']:.2f}; "
        f"p99 {ours_total['99%'] / peer_total['99%']:.2f}. Failed requests: ours "
        f"{ours_total['Failure Count']:.0f}, MLflow {peer_total['Failure Count']:.0f}.",
    ]
    figures = {name: stats.rows for name, stats in results.items()} | seen
    publish(ROOT / "benchmarks" / "results", "load", "\n".join(lines), figures)


if __name__ == "__main__":
    main()
