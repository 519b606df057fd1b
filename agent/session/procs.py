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


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
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


def own_pid() -> int:
    return os.getpid()
