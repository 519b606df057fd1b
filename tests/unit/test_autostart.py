"""Start at login: the content for each OS, and enable/disable in a scratch home."""

from __future__ import annotations

import plistlib
import shlex
from pathlib import Path

import pytest

from agent.settings.autostart import (
    APPROVED_ENABLED,
    LABEL,
    Autostart,
    launch_agent_plist,
    startup_approved,
    windows_command,
    xdg_desktop_entry,
)

ARGV = ["/opt/BYOD Agent/byod-agent", "tray"]


class DictApprovedKey:
    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    def get(self, name: str) -> bytes | None:
        return self.values.get(name)

    def set(self, name: str, value: bytes) -> None:
        self.values[name] = value


class DictRunKey:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> None:
        self.values[name] = value

    def delete(self, name: str) -> None:
        self.values.pop(name, None)


def test_windows_value_quotes_paths_with_spaces() -> None:
    assert windows_command([r"C:\Program Files\BYOD Agent\byod-agent.exe", "tray"]) == \
        r'"C:\Program Files\BYOD Agent\byod-agent.exe" tray'
    with pytest.raises(ValueError):
        windows_command(['a"b'])


def test_launch_agent_plist_round_trips() -> None:
    data = plistlib.loads(launch_agent_plist(ARGV))
    assert data["Label"] == LABEL
    assert data["ProgramArguments"] == ARGV
    assert data["RunAtLoad"] is True and "KeepAlive" not in data


def test_desktop_entry_exec_is_quoted_per_spec() -> None:
    entry = xdg_desktop_entry([*ARGV, "100%"], "BYOD エージェント", "確認します")
    exec_line = next(x for x in entry.splitlines() if x.startswith("Exec="))
    assert exec_line == 'Exec="/opt/BYOD Agent/byod-agent" tray 100%%'
    assert shlex.split(exec_line[5:].replace("%%", "%")) == [*ARGV, "100%"]
    assert "Name=BYOD エージェント" in entry
    with pytest.raises(ValueError):
        xdg_desktop_entry(ARGV, "x\nExec=evil", "c")


def test_linux_enable_disable(tmp_path: Path) -> None:
    a = Autostart("linux", tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "cfg"),
                                      "XDG_CONFIG_DIRS": str(tmp_path / "etc-xdg")})
    assert not a.is_enabled()
    a.enable(ARGV, "BYOD", "c")
    assert (tmp_path / "cfg" / "autostart" / "byod-agent.desktop").is_file()
    assert a.is_enabled()
    a.disable()
    assert not a.is_enabled()
    a.disable()  # idempotent


def test_linux_off_hides_the_packages_system_wide_entry(tmp_path: Path) -> None:
    """The .deb installs /etc/xdg/autostart/byod-agent.desktop; switching off must beat it."""
    system = tmp_path / "etc-xdg" / "autostart" / "byod-agent.desktop"
    system.parent.mkdir(parents=True)
    system.write_text("[Desktop Entry]\nType=Application\nExec=byod-agent tray\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "XDG_CONFIG_DIRS": f"{tmp_path / 'other'}:{tmp_path / 'etc-xdg'}"}
    a = Autostart("linux", tmp_path, env)
    assert a.is_enabled()  # on for everyone by the package
    a.disable()
    user = tmp_path / "cfg" / "autostart" / "byod-agent.desktop"
    assert "Hidden=true" in user.read_text() and not a.is_enabled()
    a.enable(ARGV, "BYOD", "c")
    assert a.is_enabled() and "Hidden" not in user.read_text()


def test_macos_enable_writes_launch_agent(tmp_path: Path) -> None:
    a = Autostart("macos", tmp_path, {})
    a.enable(ARGV, "BYOD", "c")
    p = tmp_path / "Library" / "LaunchAgents" / f"{LABEL}.plist"
    assert plistlib.loads(p.read_bytes())["ProgramArguments"] == ARGV
    a.disable()
    assert not p.exists()


def test_windows_uses_the_run_key(tmp_path: Path) -> None:
    key = DictRunKey()
    a = Autostart("windows", tmp_path, {}, run_key=key, approved_key=DictApprovedKey())
    a.enable([r"C:\BYOD\byod-agent.exe", "tray"], "BYOD", "c")
    assert key.values == {LABEL: r"C:\BYOD\byod-agent.exe tray"}
    assert a.is_enabled()
    a.disable()
    assert not a.is_enabled()


# --- issue 17, finding 7: Task Manager / Settings switch a Run entry off in StartupApproved ---

def _approved_values() -> dict[str, dict[str, bool]]:
    import json

    from tests.conftest import FIXTURES
    data: dict[str, dict[str, bool]] = json.loads(
        (FIXTURES / "windows" / "startup_approved_run_values.json").read_text("utf-8"))
    return data


def test_startup_approved_values() -> None:
    data = _approved_values()
    for group in ("enabled", "disabled"):
        for hexbytes, expected in data[group].items():
            assert startup_approved(bytes.fromhex(hexbytes)) is expected, hexbytes
    assert startup_approved(None) is True  # no value: Windows starts the entry


def test_disabled_in_task_manager_is_not_on(tmp_path: Path) -> None:
    key, approved = DictRunKey(), DictApprovedKey()
    key.values[LABEL] = r"C:\BYOD\byod-agent.exe tray"
    approved.values[LABEL] = bytes.fromhex("03 00 00 00 00 40 4a 5d c0 5a dc 01")
    a = Autostart("windows", tmp_path, {}, run_key=key, approved_key=approved)
    assert not a.is_enabled() and a.windows_state() == "blocked"
    # Switching it on in our settings undoes Task Manager's "off".
    a.enable([r"C:\BYOD\byod-agent.exe", "tray"], "BYOD", "c")
    assert approved.values[LABEL] == APPROVED_ENABLED and a.is_enabled()
