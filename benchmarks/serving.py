"""Our scoring service (`sentinel serve`) against `mlflow models serve` of the same registered model.

Issue 5's targets on loopback, both servers one uvicorn worker on this machine, measured in the same run:
p99 latency of 1-row requests at most half of MLflow's, and rows/s of 1000-row requests at least 5x
MLflow's. Also (unless --skip-batch) the batch `score` flow's rows/s against the detector scoring the
same rows in process.

Setup: `sentinel demo` in a temporary SENTINEL_HOME (embedded default: no SENTINEL_* variables, no
sentinel.toml) seeds a lake from the shipped mammography set and registers `vae-sentinel`; both servers
then serve `models:/vae-sentinel@champion` of that demo's MLflow SQLite registry, and the requests are
rows of the demo's lake partitions (columns s01..s06, float64), the same bodies for both servers.
Requests are sequential on one keep-alive connection; the two servers are measured in alternating
rounds, so a change in background load hits both alike.

Run: .venv/bin/python benchmarks/serving.py   (writes benchmarks/results/serving.md and .json)
     --demo-home PATH reuses an existing demo folder; --quick takes few requests (a smoke test).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from publish import publish, timed

from flows.serving.bodies import ARROW, arrow_body
from flows.stack.client import free_ports

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's bin: sentinel and mlflow live next to its python
MODEL_URI = "models:/vae-sentinel@champion"
DATASET = "mammography"
COLUMNS = [f"s{i:02d}" for i in range(1, 7)]
TARGET_P99_RATIO = 0.5  # ours / MLflow, at most
TARGET_ROWS_RATIO = 5.0  # ours / MLflow, at least
STARTUP_TIMEOUT_S = 600.0  # a loaded 2-core machine can take minutes to import and load


@dataclass(frozen=True)
class Plan:
    """How many requests each measurement sends (per server)."""

    single_warmup: int = 50
    single_requests: int = 1000  # a p99 from 300 requests moved by 0.1 ratio between runs here
    batch_rows: int = 1000
    batch_warmup: int = 10
    batch_requests: int = 200  # 40 requests: the rows/s ratio moved by 1.0 between runs
    rounds: int = 10  # the measured requests are split into rounds that alternate between the servers
    big_rows: int = 100_000  # one /score of serve.max_rows rows (the default), while /health is polled
    big_requests: int = 5


QUICK = Plan(single_warmup=3, single_requests=20, batch_warmup=1, batch_requests=4, rounds=2, big_requests=1)


@dataclass(frozen=True)
class Server:
    """A started server: its name, process, base URL and the paths of its scoring and readiness calls."""

    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    score_path: str
    ready_path: str
    log: Path


# ------------------------------------------------------------------ setup
def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without SENTINEL_*/MLflow/Prefect/thread-count settings, plus `extra`."""
    drop = ("SENTINEL_", "MLFLOW_", "PREFECT_", "OMP_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",  # mlflow runs `uvicorn` from PATH
        PYTHONUNBUFFERED="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        **extra,
    )
    return env


def run_demo(sentinel_home: Path, workdir: Path) -> Path:
    """Run `sentinel demo` with the embedded default; returns the demo's home (HOME/demo/<time>/)."""
    started = time.perf_counter()
    log = workdir / "demo.log"
    with log.open("wb") as out:
        done = subprocess.run(
            [str(BIN / "sentinel"), "demo"],
            cwd=workdir,  # no sentinel.toml here
            env=clean_env(SENTINEL_HOME=str(sentinel_home)),
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        sys.exit(f"sentinel demo failed (exit {done.returncode}); see {log}")
    homes = sorted((sentinel_home / "demo").iterdir())
    print(f"sentinel demo: {time.perf_counter() - started:.0f} s -> {homes[-1]}", flush=True)
    return homes[-1]


def lake_rows(demo_home: Path) -> pd.DataFrame:
    """Every row of the demo lake's day partitions (s01..s06 as float64), oldest day first."""
    files = sorted((demo_home / "lake" / DATASET).glob("date=*/part-0.parquet"))
    return pd.concat(
        [pd.read_parquet(f, columns=COLUMNS).astype("float64") for f in files], ignore_index=True
    )


def start_server(
    name: str, argv: list[str], env: dict[str, str], port: int, paths: tuple[str, str], workdir: Path
) -> Server:
    """Start one server in its own process group, its output going to WORKDIR/NAME.log."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(name, process, f"http://127.0.0.1:{port}", paths[0], paths[1], log)


def wait_ready(server: Server, timeout_s: float = STARTUP_TIMEOUT_S) -> float:
    """Poll the readiness path until it answers 200; returns seconds waited."""
    started = time.perf_counter()
    with httpx.Client(base_url=server.base_url, timeout=5.0) as client:
        while time.perf_counter() - started < timeout_s:
            if server.process.poll() is not None:
                sys.exit(f"{server.name} exited ({server.process.returncode}); see {server.log}")
            try:
                if client.get(server.ready_path).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.5)
    sys.exit(f"{server.name} not ready after {timeout_s:.0f} s; see {server.log}")


def stop(server: Server) -> None:
    """SIGTERM the server's process group (mlflow's CLI runs uvicorn as a child), SIGKILL if it lingers."""
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()
    else:  # the CLI may have exited while its child still runs
        with suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)


@contextmanager
def servers(demo_home: Path, workdir: Path, threads: int | None) -> Iterator[tuple[Server, Server]]:
    """Both servers of the demo's champion, ready; stopped on exit (also on errors).

    `threads` sets OMP_NUM_THREADS (torch's intra-op threads) for both; None leaves torch's default.
    """
    omp = {} if threads is None else {"OMP_NUM_THREADS": str(threads)}
    tracking_uri = f"sqlite:///{demo_home / 'mlflow.db'}"
    ours_port, mlflow_port = free_ports(2)
    started: list[Server] = []
    mlflow_args = f"models serve -m {MODEL_URI} --env-manager local -h 127.0.0.1 -p {mlflow_port} -w 1"
    try:
        started.append(
            start_server(
                "mlflow",
                [str(BIN / "mlflow"), *mlflow_args.split()],
                clean_env(MLFLOW_TRACKING_URI=tracking_uri, **omp),
                mlflow_port,
                ("/invocations", "/ping"),
                workdir,
            )
        )
        started.append(
            start_server(
                "ours",
                [str(BIN / "sentinel"), "serve", "--host", "127.0.0.1", "--port", str(ours_port)],
                clean_env(SENTINEL_HOME=str(demo_home), **omp),
                ours_port,
                ("/score", "/ready"),
                workdir,
            )
        )
        for server in started:
            print(f"{server.name} ready after {wait_ready(server):.1f} s", flush=True)
        yield started[1], started[0]
    finally:
        for server in started:
            stop(server)


# ------------------------------------------------------------ measurement
def wait_quiet(max_load: float, give_up_s: float = 25 * 60, every_s: float = 30) -> bool:
    """Wait until the 1-minute load average is below `max_load`; False if it never was within `give_up_s`."""
    started = time.perf_counter()
    while (load := os.getloadavg()[0]) >= max_load:
        if time.perf_counter() - started > give_up_s:
            print(f"load {load:.2f} >= {max_load} after {give_up_s:.0f} s: measuring anyway", flush=True)
            return False
        print(f"load {load:.2f} >= {max_load}: waiting", flush=True)
        time.sleep(every_s)
    return True


def split_body(rows: pd.DataFrame) -> bytes:
    """The MLflow `dataframe_split` JSON body of `rows` (both servers accept it)."""
    body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}
    return json.dumps(body).encode()


def timed_posts(client: httpx.Client, path: str, bodies: list[bytes]) -> list[float]:
    """POST each body in turn; seconds per request (raises on any non-200 answer)."""
    seconds = []
    for body in bodies:
        started = time.perf_counter()
        response = client.post(path, content=body)
        seconds.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {response.status_code}: {response.text[:300]}")
    return seconds


def alternate(
    pair: tuple[Server, Server],
    clients: dict[str, httpx.Client],
    bodies: list[bytes],
    warmup: int,
    rounds: int,
) -> dict[str, list[float]]:
    """Warm up both servers, then send the bodies to each in alternating rounds; per-request seconds."""
    for server in pair:
        timed_posts(clients[server.name], server.score_path, bodies[:warmup])
    measured = bodies[warmup:]
    out: dict[str, list[float]] = {s.name: [] for s in pair}
    for r in range(rounds):
        chunk = measured[r::rounds]
        order = pair if r % 2 == 0 else pair[::-1]
        for server in order:
            out[server.name] += timed_posts(clients[server.name], server.score_path, chunk)
    return out


def scores_of(name: str, payload: dict[str, Any]) -> np.ndarray:
    """The per-row scores of one server's answer."""
    rows = payload["results"] if name == "ours" else payload["predictions"]
    return np.array([r["score"] for r in rows])


def measure_servers(pair: tuple[Server, Server], rows: pd.DataFrame, plan: Plan) -> dict[str, Any]:
    """Latency of 1-row requests and rows/s of batch requests, both servers, plus a parity check."""
    n_single = plan.single_warmup + plan.single_requests
    singles = [split_body(rows.iloc[[i % len(rows)]]) for i in range(n_single)]
    n_batch = plan.batch_warmup + plan.batch_requests
    starts = [(i * plan.batch_rows) % (len(rows) - plan.batch_rows) for i in range(n_batch)]
    batches = [split_body(rows.iloc[s : s + plan.batch_rows]) for s in starts]
    headers = {"Content-Type": "application/json"}
    clients = {s.name: httpx.Client(base_url=s.base_url, headers=headers, timeout=120.0) for s in pair}
    try:
        answers = {
            s.name: scores_of(s.name, clients[s.name].post(s.score_path, content=batches[0]).json())
            for s in pair
        }
        parity = float(np.max(np.abs(answers["ours"] - answers["mlflow"])))
        single = alternate(pair, clients, singles, plan.single_warmup, plan.rounds)
        batch = alternate(pair, clients, batches, plan.batch_warmup, plan.rounds)
        ours = next(s for s in pair if s.name == "ours")
        arrow = [arrow_body(rows.iloc[s : s + plan.batch_rows]) for s in starts]
        clients["ours"].headers["Content-Type"] = ARROW
        timed_posts(clients["ours"], ours.score_path, arrow[: plan.batch_warmup])
        arrow_s = timed_posts(clients["ours"], ours.score_path, arrow[plan.batch_warmup :])
        clients["ours"].headers["Content-Type"] = "application/json"
        stream_ms = (
            np.array(timed_posts(clients["ours"], "/stream/bench", singles)[plan.single_warmup :]) * 1e3
        )
    finally:
        for client in clients.values():
            client.close()
    out: dict[str, Any] = {"max_abs_score_diff": parity, "servers": {}}
    for name in single:
        ms = np.array(single[name]) * 1e3
        wall = float(np.sum(batch[name]))
        out["servers"][name] = {
            "single_n": len(ms),
            "single_p50_ms": float(np.percentile(ms, 50)),
            "single_p99_ms": float(np.percentile(ms, 99)),
            "single_mean_ms": float(ms.mean()),
            "batch_n": len(batch[name]),
            "batch_rows": plan.batch_rows,
            "batch_p50_ms": float(np.percentile(np.array(batch[name]) * 1e3, 50)),
            "batch_rows_per_s": len(batch[name]) * plan.batch_rows / wall,
        }
    out["servers"]["ours"]["batch_arrow_rows_per_s"] = len(arrow_s) * plan.batch_rows / float(np.sum(arrow_s))
    out["servers"]["ours"] |= {
        "stream_p50_ms": float(np.percentile(stream_ms, 50)),
        "stream_p99_ms": float(np.percentile(stream_ms, 99)),
    }
    return out


def measure_health_under_load(server: Server, rows: pd.DataFrame, plan: Plan) -> dict[str, Any]:
    """/health latency on our server while one big /score is in flight (issue 14), `big_requests` times.

    One thread sends the big request; this one polls /health on a second connection until it is answered.
    """
    big = split_body(rows.iloc[np.arange(plan.big_rows) % len(rows)])
    headers = {"Content-Type": "application/json"}
    big_s: list[float] = []
    health_ms: list[float] = []
    worst_ms: list[float] = []
    with (
        httpx.Client(base_url=server.base_url, headers=headers, timeout=120.0) as heavy,
        httpx.Client(base_url=server.base_url, timeout=120.0) as light,
        ThreadPoolExecutor(1) as senders,
    ):
        timed_posts(heavy, server.score_path, [big])  # warm-up
        for _ in range(plan.big_requests):
            sender = senders.submit(timed_posts, heavy, server.score_path, [big])
            polls = []
            while not sender.done():
                started = time.perf_counter()
                light.get("/health").raise_for_status()
                polls.append((time.perf_counter() - started) * 1e3)
                time.sleep(0.002)
            big_s += sender.result()
            health_ms += polls
            worst_ms.append(max(polls, default=float("nan")))
    return {
        "big_rows": plan.big_rows,
        "big_request_ms_median": float(np.median(big_s) * 1e3),
        "health_polls": len(health_ms),
        "health_p50_ms": float(np.percentile(health_ms, 50)),
        "health_max_ms_median": float(np.median(worst_ms)),
    }


def measure_batch_flow(demo_home: Path, threads: int | None) -> dict[str, Any]:
    """The batch `score` flow against the champion detector in this process, on the same rows.

    The flow scores each lake day in turn (the first run, which starts Prefect, only warms up); the
    detector's `score` and `predict` then take the same days' rows, one call per day (best of 3).
    `threads`, if given, sets torch's intra-op threads in this process.
    """
    import torch

    from flows import runtime

    if threads is not None:
        torch.set_num_threads(threads)
    from flows.settings import Settings

    for key in [k for k in os.environ if k.startswith("SENTINEL_")]:
        del os.environ[key]  # the embedded default, as the demo used
    settings = Settings(home=demo_home)
    runtime.configure(settings)
    from flows.adapters.connect import registry_of
    from flows.adapters.lake import Lake, open_store
    from flows.jobs.score import score

    lake = Lake(open_store(settings.lake_root()))
    days: list[date] = lake.days(DATASET)
    frames = [pd.read_parquet(demo_home / "lake" / DATASET / f"date={d}" / "part-0.parquet") for d in days]
    frames = [f[COLUMNS].astype("float64") for f in frames]

    first = timed(lambda: score(settings=settings, dataset=DATASET, day=days[0]))[1]
    flow_s = [timed(lambda d=d: score(settings=settings, dataset=DATASET, day=d))[1] for d in days[1:]]
    registry = registry_of(settings)
    detector = registry.load_version(str(registry.alias_version("champion"))).detector
    rows = sum(len(f) for f in frames[1:])
    whole = pd.concat(frames[1:], ignore_index=True)

    def best_of_3(fn: Callable[[], Any]) -> float:
        fn()  # warm-up
        return min(timed(fn)[1] for _ in range(3))

    score_s = best_of_3(lambda: [detector.score(f) for f in frames[1:]])
    predict_s = best_of_3(lambda: [detector.predict(f) for f in frames[1:]])
    whole_s = best_of_3(lambda: detector.score(whole))
    return {
        "days": len(flow_s),
        "rows": rows,
        "first_flow_s": first,
        "flow_s_per_day_median": float(np.median(flow_s)),
        "flow_rows_per_s": rows / sum(flow_s),
        "detector_score_rows_per_s": rows / score_s,
        "detector_predict_rows_per_s": rows / predict_s,
        "detector_score_one_call_rows_per_s": len(whole) / whole_s,
    }


# ---------------------------------------------------------------- report
def report(result: dict[str, Any], plan: Plan) -> str:
    """The markdown report."""
    ours, ml = result["servers"]["ours"], result["servers"]["mlflow"]
    p99_ratio = ours["single_p99_ms"] / ml["single_p99_ms"]
    rows_ratio = ours["batch_rows_per_s"] / ml["batch_rows_per_s"]
    arrow_ratio = ours["batch_arrow_rows_per_s"] / ml["batch_rows_per_s"]
    result["ratios"] = {"p99_ours_over_mlflow": p99_ratio, "rows_per_s_ours_over_mlflow": rows_ratio}

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    load = result["load_before"]
    limit = result.get("wait_quiet")
    quiet = {
        None: "",
        True: f" (after waiting for it to drop below {limit})",
        False: f" (it did not drop below {limit} within 25 min)",
    }[result.get("quiet")]
    n = result["torch_threads"]
    threads = (
        f"ours: serve.torch_threads (default 1); MLflow: torch's default ({os.cpu_count()})"
        if n is None
        else f"OMP_NUM_THREADS={n} in both servers"
    )
    lines = [
        "# serving benchmark: `sentinel serve` vs `mlflow models serve`, same registered model",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; 1-minute load average "
        f"{load[0]:.2f} when the measurement started{quiet}, {result['load_after'][0]:.2f} at the end. "
        f"Model {MODEL_URI} of a "
        f"`sentinel demo` run ({DATASET}, 6 features). Both servers: one uvicorn worker on loopback, "
        "sequential requests on one keep-alive httpx connection, the same `dataframe_split` bodies "
        f"(ours: POST /score, MLflow: POST /invocations), measured in {plan.rounds} alternating rounds. "
        f"Torch intra-op threads: {threads}.",
        "",
        "| measure | ours | MLflow | ours / MLflow | target | |",
        "|---|---|---|---|---|---|",
        f"| 1-row p50 latency, ms ({ours['single_n']} requests, {plan.single_warmup} warm-up) | "
        f"{ours['single_p50_ms']:.2f} | {ml['single_p50_ms']:.2f} | "
        f"{ours['single_p50_ms'] / ml['single_p50_ms']:.2f} | | |",
        f"| 1-row p99 latency, ms | {ours['single_p99_ms']:.2f} | {ml['single_p99_ms']:.2f} | "
        f"{p99_ratio:.2f} | <= {TARGET_P99_RATIO} | {verdict(p99_ratio <= TARGET_P99_RATIO)} |",
        f"| {plan.batch_rows}-row request p50 latency, ms ({ours['batch_n']} requests, "
        f"{plan.batch_warmup} warm-up) | {ours['batch_p50_ms']:.1f} | {ml['batch_p50_ms']:.1f} | "
        f"{ours['batch_p50_ms'] / ml['batch_p50_ms']:.2f} | | |",
        f"| {plan.batch_rows}-row requests, rows/s | {ours['batch_rows_per_s']:,.0f} | "
        f"{ml['batch_rows_per_s']:,.0f} | {rows_ratio:.2f} | >= {TARGET_ROWS_RATIO:g} | "
        f"{verdict(rows_ratio >= TARGET_ROWS_RATIO)} |",
        f"| {plan.batch_rows}-row requests, rows/s, ours with an Arrow IPC body (MLflow: JSON, it has no "
        f"binary input), measured after the rounds | {ours['batch_arrow_rows_per_s']:,.0f} | "
        f"{ml['batch_rows_per_s']:,.0f} | {arrow_ratio:.2f} | | |",
        f"| 1-row POST /stream/ID p50 / p99 latency, ms (ours keeps the stream's EMA state; MLflow has no "
        f"streams: its 1-row /invocations), measured after the rounds | {ours['stream_p50_ms']:.2f} / "
        f"{ours['stream_p99_ms']:.2f} | {ml['single_p50_ms']:.2f} / {ml['single_p99_ms']:.2f} | "
        f"{ours['stream_p50_ms'] / ml['single_p50_ms']:.2f} / "
        f"{ours['stream_p99_ms'] / ml['single_p99_ms']:.2f} | | |",
        "",
        f"Parity: largest |score difference| between the two servers on one {plan.batch_rows}-row "
        f"request: {result['max_abs_score_diff']:.3g}.",
    ]
    under = result.get("health_under_load")
    if under:
        lines += [
            "",
            f"Ours under load (issue 14): GET /health polled on a second connection while one "
            f"{under['big_rows']:,}-row /score is in flight ({plan.big_requests} times; the big request "
            f"takes {under['big_request_ms_median']:.0f} ms, median): /health p50 "
            f"{under['health_p50_ms']:.1f} ms over {under['health_polls']} polls, slowest per big request "
            f"{under['health_max_ms_median']:.1f} ms (median).",
        ]
    flow = result.get("batch_flow")
    if flow:
        lines += [
            "",
            f"Batch scoring of {flow['rows']:,} lake rows ({flow['days']} day partitions, one call per day; "
            f"the first flow run, {flow['first_flow_s']:.1f} s with the Prefect server start, is left out):",
            "",
            "| path | rows/s | rows/s / flow's |",
            "|---|---|---|",
            "| `score` flow (Prefect; loads the champion, reads the day, writes scores and alerts; "
            f"median {flow['flow_s_per_day_median']:.2f} s per day) | {flow['flow_rows_per_s']:,.0f} "
            "| 1.00 |",
        ]
        for key, label in (
            ("detector_score_rows_per_s", "`detector.score(frame)` per day, best of 3"),
            ("detector_predict_rows_per_s", "`detector.predict(frame)` per day, best of 3"),
            ("detector_score_one_call_rows_per_s", "`detector.score(frame)` all rows in one call, best of 3"),
        ):
            lines.append(f"| {label} | {flow[key]:,.0f} | {flow[key] / flow['flow_rows_per_s']:,.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-home", type=Path, help="Reuse this demo folder instead of running the demo.")
    parser.add_argument("--quick", action="store_true", help="Few requests: a smoke test.")
    parser.add_argument("--skip-batch", action="store_true", help="Leave out the batch flow measurement.")
    parser.add_argument(
        "--torch-threads", type=int, help="OMP_NUM_THREADS for both servers (default: torch's own)."
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        metavar="LOAD",
        help="Once the servers are up, wait (up to 25 min) for a 1-minute load average below LOAD.",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="Results folder.")
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    workdir = Path(tempfile.mkdtemp(prefix="sentinel-serving-"))
    if args.demo_home:  # a copy: the batch flow writes scores to the lake and refuses days scored before
        demo_home = Path(shutil.copytree(args.demo_home, workdir / "demo-copy"))
    else:
        demo_home = run_demo(workdir / "home", workdir)
    rows = lake_rows(demo_home)
    result: dict[str, Any] = {
        "plan": asdict(plan),
        "demo_home": str(demo_home),
        "torch_threads": args.torch_threads,
    }
    with servers(demo_home, workdir, args.torch_threads) as pair:
        if args.wait_quiet:
            result["wait_quiet"], result["quiet"] = args.wait_quiet, wait_quiet(args.wait_quiet)
        result["load_before"] = os.getloadavg()
        result.update(measure_servers(pair, rows, plan))
        result["health_under_load"] = measure_health_under_load(pair[0], rows, plan)
    if not args.skip_batch:
        result["batch_flow"] = measure_batch_flow(demo_home, args.torch_threads)
    result["load_after"] = os.getloadavg()
    publish(args.out, "serving", report(result, plan), result)


if __name__ == "__main__":
    main()
