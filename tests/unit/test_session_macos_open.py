"""macOS: ``open -W -a "Windows App" file`` is not the app; ending the session must end the app
that Launch Services started, found by name and start time (issue 17, finding 10). Real processes:
a stand-in ``open`` that starts a detached copy of /bin/sleep named "Windows App" (so its process
name is that, as on macOS) and then waits, as ``open -W`` does."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from agent.session import procs

APP = "Windows App"


def _stand_in(tmp_path: Path) -> Path:
    app = tmp_path / APP
    shutil.copy("/bin/sleep", app)
    opener = tmp_path / "open"
    opener.write_text(f'#!/bin/sh\n( setsid "{app}" 300 & )\nsleep 300\n')
    opener.chmod(0o755)
    return opener


def _app_pids(since: float) -> list[int]:
    rows = [(p.pid, p.info["name"] or "", p.info["exe"] or "", p.info["create_time"] or 0.0)
            for p in psutil.process_iter(["name", "exe", "create_time"])]
    return procs.app_processes(APP, since, rows)


def _wait(cond: object, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not Path("/bin/sleep").exists() or os.name != "posix", reason="POSIX only")
def test_ending_the_session_ends_the_app_open_started(tmp_path: Path) -> None:
    opener = _stand_in(tmp_path)
    earlier = subprocess.Popen([str(tmp_path / APP), "300"])  # staff's own, older instance
    time.sleep(1.2)  # older than the session by more than the slack
    started = time.time()
    proc = procs.spawn([str(opener), "-W", "-a", APP, str(tmp_path / "s.rdp")],
                       stdin_pipe=False)
    try:
        assert _wait(lambda: len(_app_pids(started)) == 1)
        app_pid = _app_pids(started)[0]
        root = psutil.Process(proc.pid)
        assert app_pid not in {c.pid for c in root.children(recursive=True)}  # not our child
        procs.terminate_tree(proc.pid, timeout=3.0)
        assert _wait(lambda: not psutil.pid_exists(app_pid) or
                     psutil.Process(app_pid).status() == psutil.STATUS_ZOMBIE)
        assert earlier.poll() is None  # the instance from before the session is left alone
    finally:
        earlier.kill()
        earlier.wait(5)
        proc.kill()
        proc.wait(5)
        for pid in _app_pids(0.0):
            psutil.Process(pid).kill()


def test_opened_app_reads_the_open_command_line() -> None:
    assert procs.opened_app(["open", "-W", "-a", APP, "/tmp/x.rdp"]) == APP
    assert procs.opened_app(["/usr/bin/open", "-a", "Microsoft Remote Desktop", "f"]) == \
        "Microsoft Remote Desktop"
    assert procs.opened_app(["mstsc.exe", "f.rdp"]) is None
    assert procs.opened_app(["open", "-a"]) is None


def test_app_processes_by_name_or_bundle_and_start_time() -> None:
    rows = [(10, APP, f"/Applications/{APP}.app/Contents/MacOS/{APP}", 100.0),
            (11, "Windows App Helper", f"/Applications/{APP}.app/Contents/MacOS/helper", 101.0),
            (12, APP, "", 50.0),  # older than the session
            (13, "Safari", "/Applications/Safari.app/Contents/MacOS/Safari", 100.0)]
    assert procs.app_processes(APP, 100.0, rows) == [10, 11]
