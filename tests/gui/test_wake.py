"""Re-check triggers for real: the clock-gap detector in a process whose wall clock jumps
(libfaketime), and logind/screensaver signals over real private D-Bus buses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.procs import stop
from tests.conftest import REPO, require, require_tool

pytestmark = pytest.mark.gui
PROBE = Path(__file__).with_name("wake_probe.py")
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
# A throw-away "system" bus on which this test may own org.freedesktop.login1 and signal from it.
SYSTEM_BUS_CONF = """<busconfig><type>system</type><listen>unix:path={socket}</listen>
<auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/>
<allow receive_sender="*"/></policy></busconfig>
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBUS_")}
    env.update(QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPO), **extra)
    return env


def test_clock_gap_detector_notices_a_wall_clock_jump(tmp_path: Path) -> None:
    require_tool("faketime")
    require(LIBFAKETIME.exists(), f"{LIBFAKETIME} missing (Debian package faketime)")
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    # Only the wall clock is faked; CLOCK_MONOTONIC stays real, as during a real suspend.
    env = _env(LD_PRELOAD=str(LIBFAKETIME), FAKETIME_TIMESTAMP_FILE=str(offset),
               FAKETIME_NO_CACHE="1", DONT_FAKE_MONOTONIC="1")
    proc = subprocess.Popen([sys.executable, str(PROBE), "clock"], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"  # 3 ticks without a gap: no false alarm
        offset.write_text("+2h\n")  # the PC "slept" two hours
        line = proc.stdout.readline().strip()
        assert line.startswith("jumped "), (line, proc.stderr.read() if proc.stderr else "")
        assert abs(int(line.split()[1]) - 7200) < 30
    finally:
        stop(proc, timeout=5)


@pytest.fixture
def buses(tmp_path: Path) -> Iterator[dict[str, str]]:
    require_tool("dbus-daemon")
    conf = tmp_path / "system.conf"
    conf.write_text(SYSTEM_BUS_CONF.format(socket=tmp_path / "system_bus"))
    procs = [subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork",
                               "--nopidfile", "--print-address=1"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True),
             subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile",
                               "--print-address=1", f"--address=unix:path={tmp_path / 'sess'}"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)]
    try:
        addresses = [p.stdout.readline().strip() if p.stdout else "" for p in procs]
        assert all(addresses), "dbus-daemon printed no address"
        yield {"DBUS_SYSTEM_BUS_ADDRESS": addresses[0], "DBUS_SESSION_BUS_ADDRESS": addresses[1]}
    finally:
        for p in procs:
            stop(p, timeout=5)


def test_resume_and_unlock_signals_over_dbus(buses: dict[str, str]) -> None:
    started = time.monotonic()
    out = subprocess.run([sys.executable, str(PROBE), "dbus"], env=_env(**buses), cwd=REPO,
                         capture_output=True, text=True, timeout=60, check=False)
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    assert "login1" in lines.get("sources", ""), out
    assert "org.freedesktop.ScreenSaver" in lines["sources"]
    assert lines.get("woke") == "resume,unlock", out
    assert time.monotonic() - started < 30
