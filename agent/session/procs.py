"""Start the RDP client as its own process group and end its whole tree (psutil)."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys

import psutil

log = logging.getLogger("agent.session")


def spawn(argv: list[str], *, stdin_pipe: bool) -> subprocess.Popen[bytes]:
    """Start the client in its own session/process group: a Ctrl+C meant for the agent does not
    reach it, and the agent decides when it ends. No shell: argv comes from a LaunchPlan."""
    stdin = subprocess.PIPE if stdin_pipe else subprocess.DEVNULL
    if sys.platform == "win32":
        return subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                creationflags=subprocess.CREATE_NEW_PROCESS_GROUP)
    return subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def opened_app(cmdline: list[str]) -> str | None:
    """The application ``open -a APP`` (macOS) starts, from the open process's command line."""
    if not any(os.path.basename(a) == "open" for a in cmdline[:2]) or "-a" not in cmdline:
        return None
    i = cmdline.index("-a")
    return cmdline[i + 1] if i + 1 < len(cmdline) and cmdline[i + 1] else None


def app_processes(app: str, since: float,
                  procs: list[tuple[int, str, str, float]]) -> list[int]:
    """PIDs of ``app`` (by process name, or an executable inside ``APP.app/Contents/MacOS``)
    started at or after ``since`` (a second of slack for clock granularity), as (pid, name,
    exe, create_time) rows. Pure: the session's own start time keeps an instance of the app
    that staff opened earlier for something else out of it."""
    inside = f"/{app}.app/Contents/MacOS/"
    return [pid for pid, name, exe, created in procs
            if (name == app or inside in exe) and created >= since - 1.0]


def _launched_by_open(root: psutil.Process) -> list[psutil.Process]:
    """``open -W -a "Windows App" file`` only waits: Launch Services starts the app, which is
    not our child, so ending the open process alone would leave the session running."""
    try:
        app = opened_app(root.cmdline())
        since = root.create_time()
    except psutil.Error:
        return []
    if app is None:
        return []
    rows = []
    for p in psutil.process_iter(["pid", "name", "exe", "create_time"]):
        info = p.info
        rows.append((info["pid"], info.get("name") or "", info.get("exe") or "",
                     float(info.get("create_time") or 0.0)))
    out = []
    for pid in app_processes(app, since, rows):
        with contextlib.suppress(psutil.Error):
            out.append(psutil.Process(pid))
    if out:
        log.info("session: %s runs as %s (started by open, not our child)", app,
                 ", ".join(str(p.pid) for p in out))
    return out


def tree(pid: int) -> list[psutil.Process]:
    """The process and its descendants, and on macOS the app ``open -a`` started for it."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
    for extra in _launched_by_open(root):
        if all(extra.pid != p.pid for p in procs):
            procs += [extra, *_children(extra)]
    return procs


def _children(p: psutil.Process) -> list[psutil.Process]:
    try:
        return list(p.children(recursive=True))
    except psutil.Error:
        return []


def terminate_tree(pid: int, *, timeout: float = 5.0) -> int:
    """Ask every process of the tree to end, kill what is left after ``timeout``.

    The tree is taken before the root is told to stop: a client that exits at once would orphan
    its helpers otherwise. Returns how many processes had to be killed.
    """
    procs = tree(pid)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _gone, alive = psutil.wait_procs(procs, timeout=timeout)
    alive = [p for p in alive if not _zombie(p)]  # dead, waiting for a parent that is not us
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=2.0)
    if alive:
        log.warning("killed %d client process(es) that ignored the request to stop", len(alive))
    return len(alive)


def _zombie(p: psutil.Process) -> bool:
    try:
        return p.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def is_in_tree(pid: int, root_pid: int) -> bool:
    """True when ``pid`` is ``root_pid`` or one of its descendants."""
    if pid == root_pid:
        return True
    try:
        return any(p.pid == root_pid for p in psutil.Process(pid).parents())
    except psutil.Error:
        return False
