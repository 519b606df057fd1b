"""The two tray apps under test, started the same way: the agent and the minimal reference."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import psutil

from bench.common import REPO, python, visible_tray_icon
from testkit.procs import stop, wait_for

ICON_TIMEOUT_S = 30.0


def agent_argv() -> list[str]:
    script = REPO / ".venv" / "bin" / "byod-agent"
    return [str(script), "tray"] if script.exists() else [python(), "-m", "agent", "tray"]


def minimal_argv() -> list[str]:
    return [python(), str(REPO / "bench" / "minimal_tray.py")]


APPS: dict[str, list[str]] = {"agent": agent_argv(), "minimal": minimal_argv()}


def launch(name: str, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(APPS[name], env=dict(env), cwd=REPO, stdin=subprocess.DEVNULL,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def time_to_icon(name: str, env: Mapping[str, str], log: Path) -> float:
    """Seconds from spawning the process to its icon being mapped in the tray."""
    start = time.perf_counter()
    proc = launch(name, env, log)
    try:
        wait_for(lambda: not _died(proc, log) and visible_tray_icon(proc.pid, env),
                 ICON_TIMEOUT_S, f"the {name} tray icon")
        return time.perf_counter() - start
    finally:
        stop(proc)


def _died(proc: subprocess.Popen[bytes], log: Path) -> bool:
    if proc.poll() is not None:
        tail = log.read_text(errors="replace")[-500:]
        raise RuntimeError(f"exited with {proc.returncode}: {tail}")
    return False


def family(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def rss_bytes(pid: int) -> int:
    total = 0
    for p in family(pid):
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """CPU time of the process, its reaped children and its live descendants (monotonic)."""
    root = psutil.Process(pid)
    t = root.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for p in root.children(recursive=True):
        try:
            c = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += c.user + c.system
    return total
