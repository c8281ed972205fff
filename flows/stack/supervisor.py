"""Start, watch and stop the stack's processes: pid files and logs in HOME/stack, health waits.

Start-up is all or nothing: a part that fails to answer stops every part this start started.

Example:
    >>> up(settings)      # returns once every part answers its health check
    >>> status(settings)  # {"postgres": True, "s3": True, ...}
    >>> down(settings)
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from itertools import groupby
from pathlib import Path

import httpx

from flows.errors import StackError
from flows.settings import Settings
from flows.stack.parts import Part, folder, parts

STOP_SECONDS = 20.0


def up(settings: Settings, report: Callable[[str], None] = lambda line: None) -> None:
    """Start every part not yet running, wave by wave, and wait until each answers.

    Raises:
        StackError: a port is taken by something else, a program fails, or a part does not answer in
            `stack.start_seconds`; every part this call started is stopped again.
    """
    home = folder(settings)
    home.mkdir(parents=True, exist_ok=True)
    todo = sorted((p for p in parts(settings) if not _alive(home, p)), key=lambda p: p.wave)
    for part in todo:
        if _port_taken(settings.stack.host, part.port):
            raise StackError(
                f"{part.name}: port {part.port} is already taken (set stack.{_port_option(part)})"
            )
    started: list[Part] = []
    try:
        for _, wave in groupby(todo, key=lambda p: p.wave):
            batch = list(wave)
            for part in batch:
                if part.prepare:
                    part.prepare()
                _spawn(home, part)
                started.append(part)
            for part in batch:
                _wait(home, part, settings.stack.start_seconds, settings.stack.host)
                if part.after:
                    part.after()
                report(f"{part.name}: up on port {part.port} (log {_log(home, part)})")
    except BaseException:
        _stop(home, reversed(started))
        raise


def down(settings: Settings, report: Callable[[str], None] = lambda line: None) -> None:
    """Stop every running part, last started first (SIGTERM or the part's own signal, then SIGKILL)."""
    home = folder(settings)
    stopped = _stop(home, reversed(parts(settings)))
    for name in stopped:
        report(f"{name}: stopped")


def status(settings: Settings) -> dict[str, bool]:
    """Whether each part answers its health check now."""
    s = settings.stack
    return {p.name: _answers(p, s.host) for p in parts(settings)}


def _spawn(home: Path, part: Part) -> None:
    log = _log(home, part).open("ab")
    process = subprocess.Popen(  # its own session: stopping it signals its whole process group
        part.command,
        env={**os.environ, **part.env},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=home,
    )
    log.close()
    _pid_file(home, part).write_text(str(process.pid))


def _wait(home: Path, part: Part, seconds: float, host: str) -> None:
    deadline = time.monotonic() + seconds
    while not _answers(part, host):
        if not _alive(home, part):
            raise StackError(f"{part.name} exited before answering: see {_log(home, part)}")
        if time.monotonic() > deadline:
            raise StackError(f"{part.name} did not answer in {seconds:g} s: see {_log(home, part)}")
        time.sleep(0.5)


def _answers(part: Part, host: str) -> bool:
    if part.health_url is None:  # postgres: accepting connections
        with socket.socket() as sock:
            sock.settimeout(1)
            return sock.connect_ex((host, part.port)) == 0
    try:
        answers = httpx.get(part.health_url, timeout=2).status_code == 200
        return answers and (part.ready is None or part.ready())
    except httpx.HTTPError:
        return False


def _stop(home: Path, order: Iterable[Part]) -> list[str]:
    """Signal each part with a pid file, wait for it, and remove the pid file; the names stopped."""
    stopped = []
    for part in order:
        pid_file = _pid_file(home, part)
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text())
        if _running(pid):
            _signal(pid, getattr(signal, part.stop_signal))
            deadline = time.monotonic() + STOP_SECONDS
            while _running(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _running(pid):
                _signal(pid, signal.SIGKILL)
            stopped.append(part.name)
        pid_file.unlink()
    return stopped


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _running(pid: int) -> bool:
    """The process exists and has not exited (an exited one waits as a zombie until its parent reaps it)."""
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished:
            return False
    except ChildProcessError:  # not our child: ask the kernel
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _alive(home: Path, part: Part) -> bool:
    pid_file = _pid_file(home, part)
    return pid_file.exists() and _running(int(pid_file.read_text()))


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _port_option(part: Part) -> str:
    if part.name.startswith("dask-"):
        return "dask_ports"
    if part.name.endswith("-worker"):
        return "worker_ports"
    return f"{part.name}_port"


def _pid_file(home: Path, part: Part) -> Path:
    return home / f"{part.name}.pid"


def _log(home: Path, part: Part) -> Path:
    return home / f"{part.name}.log"
