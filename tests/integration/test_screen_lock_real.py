"""screen_lock on GNOME with the real gsettings, schemas and backend.

Values are written with the real ``gsettings set`` into a scratch XDG_CONFIG_HOME through GLib's
keyfile backend (no session bus needed, nothing of the host's settings touched) and read back by the
probe through the real SubprocessRunner, which passes GSETTINGS_BACKEND on to gsettings.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agent.core.subprocess_runner import SubprocessRunner
from agent.posture.checks.screen_lock import check as screen_lock
from agent.posture.context import ProbeContext
from agent.posture.engine import run_one
from agent.posture.model import CheckResult, Status
from tests.conftest import require, require_tool

pytestmark = pytest.mark.real


@pytest.fixture
def gnome_env(tmp_path: Path) -> dict[str, str]:
    require_tool("gsettings")
    schemas = subprocess.run(["gsettings", "list-schemas"], capture_output=True, text=True,
                             check=False).stdout.split()
    require({"org.gnome.desktop.screensaver", "org.gnome.desktop.session",
             "org.gnome.desktop.lockdown"} <= set(schemas),
            "GNOME schemas not installed (gsettings-desktop-schemas)")
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
            "XDG_CONFIG_HOME": str(tmp_path / "config"), "GSETTINGS_BACKEND": "keyfile"}


def gset(env: dict[str, str], schema: str, key: str, value: str) -> None:
    subprocess.run(["gsettings", "set", schema, key, value], env=env, check=True, timeout=30)


def probe(env: dict[str, str], desktop: str = "GNOME") -> CheckResult:
    session = {**env, "XDG_CURRENT_DESKTOP": desktop, "XDG_SESSION_TYPE": "wayland"}
    ctx = ProbeContext(os="linux", runner=SubprocessRunner(session, default_timeout=10),
                       home=Path(env["HOME"]), env=session)
    return run_one("screen_lock", screen_lock.check, ctx)


def test_schema_defaults_pass(gnome_env: dict[str, str]) -> None:
    r = probe(gnome_env)
    assert r.status is Status.PASS, r.summary
    assert (r.evidence["idle_delay_s"], r.evidence["lock_delay_s"]) == (300, 0)
    assert r.summary.params["minutes"] == 5


def test_values_written_with_gsettings_are_what_the_probe_reads(
        gnome_env: dict[str, str]) -> None:
    gset(gnome_env, "org.gnome.desktop.session", "idle-delay", "600")
    gset(gnome_env, "org.gnome.desktop.screensaver", "lock-delay", "120")
    r = probe(gnome_env, "ubuntu:GNOME")
    assert r.status is Status.PASS
    assert r.evidence["lock_after_s"] == 720
    keyfile = Path(gnome_env["XDG_CONFIG_HOME"]) / "glib-2.0/settings/keyfile"
    assert "idle-delay=600" in keyfile.read_text()  # written where we said, nowhere else


def test_long_idle_warns(gnome_env: dict[str, str]) -> None:
    gset(gnome_env, "org.gnome.desktop.session", "idle-delay", "1800")
    r = probe(gnome_env)
    assert (r.status, r.summary.key) == (Status.WARN, "screen_lock.too_long")
    assert dict(r.summary.params) == {"minutes": 30, "max_minutes": 15}


def test_lock_delay_adds_to_idle(gnome_env: dict[str, str]) -> None:
    gset(gnome_env, "org.gnome.desktop.session", "idle-delay", "600")
    gset(gnome_env, "org.gnome.desktop.screensaver", "lock-delay", "600")
    assert probe(gnome_env).status is Status.WARN


def test_never_blank_warns(gnome_env: dict[str, str]) -> None:
    gset(gnome_env, "org.gnome.desktop.session", "idle-delay", "0")
    r = probe(gnome_env)
    assert (r.status, r.summary.key) == (Status.WARN, "screen_lock.never")


@pytest.mark.parametrize(("schema", "key", "value"), [
    ("org.gnome.desktop.screensaver", "lock-enabled", "false"),
    ("org.gnome.desktop.lockdown", "disable-lock-screen", "true"),
])
def test_lock_switched_off_warns(gnome_env: dict[str, str], schema: str, key: str,
                                 value: str) -> None:
    gset(gnome_env, schema, key, value)
    r = probe(gnome_env)
    assert (r.status, r.summary.key) == (Status.WARN, "screen_lock.off")
    assert r.remediation == "screen_lock.linux_gnome"


def test_missing_schema_is_unknown(gnome_env: dict[str, str]) -> None:
    """Cinnamon's schemas are not installed here: the real gsettings error becomes unknown."""
    r = probe(gnome_env, "X-Cinnamon")
    assert r.status is Status.UNKNOWN
    assert r.summary.key == "probe.command_failed"
