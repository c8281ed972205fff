"""Where the stack's tests spend the CPU: every process sampled while they run, grouped by what it is.

Issue 17 asks that the stack's tests add at most about 4 minutes to the suite on 2 cores. The suite is
bound by the CPU (both cores busy 96% of a run), so the stack's time is the CPU its servers, workers and
processes take. This runs `pytest tests/stack` as `make test` does (two xdist groups, each on its own
stack) and samples every process on the machine each --interval seconds, keeping the last CPU time (user
and system) seen of each process started during the run. A process is named by its command line
(the first rule that matches); one spawned by another (multiprocessing, uvicorn's and Dask's workers)
takes its parent's name. CPU a process spends after its last sample is missed: the table's total is set
beside the machine's busy time over the same run.

Run: .venv/bin/python benchmarks/stack_cpu.py   (writes benchmarks/results/stack_cpu.md and .json)
     --interval S between samples (default 0.5); --workers N xdist workers (default 2, one per stack).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from publish import markdown_table, publish  # noqa: E402

# (what the process is, fragments of its command line); the first rule with a fragment in it wins
RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("spawned", ("spawn_main", "multiprocessing-fork")),  # takes its parent's name
    ("flow runs on the Prefect workers (retrain, monitor)", ("prefect.engine", "prefect.runner")),
    ("Prefect server", ("prefect server",)),
    ("Prefect workers", ("prefect worker",)),
    ("MLflow server (and its job runner)", ("mlflow server", "mlflow.server", "huey")),
    ("Dask scheduler and workers", ("dask", "distributed")),
    ("PostgreSQL", ("postgres",)),
    ("S3 (moto)", ("moto_server",)),
    ("the consumer's fresh virtual environment", ("-m pip", "ensurepip", "-m venv")),
    ("pytest and its xdist workers", ("pytest", "execnet", "exec(eval(sys.stdin")),
)


def name_of(command: str, parent: str | None) -> str:
    """What a process is, from its command line (a sentinel command by its subcommand)."""
    words = command.split()
    for marker in ("-m flows", "bin/sentinel"):
        if marker in command:
            rest = command.split(marker, 1)[1].split()
            return f"sentinel {rest[0]}" if rest else "sentinel"
    for name, fragments in RULES:
        if any(fragment in command for fragment in fragments):
            return (parent or "other: " + command[:60]) if name == "spawned" else name
    return parent or "other: " + " ".join(words[:3])


def sample(seen: dict[tuple[int, float], list[Any]], since: float, skip: int) -> None:
    """Record each process started after `since`: its name (once) and the CPU seconds it has used."""
    by_pid = {pid: entry[0] for (pid, _), entry in seen.items()}
    fields = ["pid", "ppid", "cmdline", "cpu_times", "create_time"]
    for info in sorted((p.info for p in psutil.process_iter(fields)), key=lambda i: i["create_time"] or 0):
        if info["create_time"] is None or info["create_time"] < since or info["pid"] == skip:
            continue
        if info["cpu_times"] is None:
            continue
        key = (info["pid"], info["create_time"])
        cpu = info["cpu_times"].user + info["cpu_times"].system
        if key in seen:
            seen[key][1] = cpu
        elif info["cmdline"]:  # a zombie's is empty: it is named when first seen alive, or not at all
            seen[key] = [name_of(" ".join(info["cmdline"]), by_pid.get(info["ppid"])), cpu]
            by_pid[info["pid"]] = seen[key][0]  # oldest first: a parent is named before its children


def busy() -> float:
    """The machine's busy CPU seconds so far, all cores."""
    times = psutil.cpu_times()
    return float(sum(getattr(times, field, 0) for field in ("user", "nice", "system", "irq", "softirq")))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    command = [sys.executable, "-m", "pytest", "tests/stack", "-q", "-p", "no:cacheprovider"]
    command += ["-n", str(args.workers), "--dist", "loadgroup", "--no-loadscope-reorder"]
    seen: dict[tuple[int, float], list[Any]] = {}
    since, busy_before = time.time() - 1, busy()
    with tempfile.TemporaryFile("w+") as log:
        tests = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
        while tests.poll() is None:
            sample(seen, since, skip=os.getpid())
            time.sleep(args.interval)
        wall, machine = time.time() - since, busy() - busy_before
        log.seek(0)
        printed = log.read().strip().splitlines()
        summary = printed[-1:]
    print("\n".join(printed[-200 if tests.returncode else -60 :]), file=sys.stderr)  # failures, warnings

    cpu, count = Counter[str](), Counter[str]()
    for name, seconds in seen.values():
        cpu[name] += seconds
        count[name] += 1
    total = sum(cpu.values())
    rows = [
        {"process": name, "processes": count[name], "core-s": seconds, "share %": 100 * seconds / total}
        for name, seconds in cpu.most_common()
    ]
    cores = os.cpu_count() or 1
    lines = [
        "# CPU of the stack's tests, by process",
        "",
        f"Machine: {cores} cores, Python {platform.python_version()}. `pytest tests/stack -n {args.workers} "
        f"--dist loadgroup`: {' '.join(summary)} (exit {tests.returncode}); wall {wall:.0f} s. Processes "
        f"sampled every {args.interval:g} s: {total:.0f} core-s attributed; the machine was busy "
        f"{machine:.0f} core-s of {wall * cores:.0f} ({100 * machine / (wall * cores):.0f}%) over the run.",
        "",
        markdown_table(rows, digits=1),
    ]
    figures = {"cores": cores, "wall_s": wall, "machine_busy_core_s": machine, "by_process": rows}
    publish(ROOT / "benchmarks" / "results", "stack_cpu", "\n".join(lines), figures)
    sys.exit(tests.returncode)


if __name__ == "__main__":
    main()
