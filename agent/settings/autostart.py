"""Start at login, per OS: Windows Run key, macOS LaunchAgent, XDG autostart entry.

Content is built by pure functions (tested on every OS); the I/O is a few small functions with the
target paths and the registry handed in, so tests write into a temporary home. Per-user locations
only: a staff member can switch it off without an administrator.
"""

from __future__ import annotations

import importlib
import plistlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

LABEL = "jp.lg.byod-agent"  # LaunchAgent label and the Run value name
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
# Task Manager's Startup tab and Settings > Apps > Startup switch a Run entry off here, without
# touching the Run value: 12 bytes, a status DWORD then a FILETIME of when it was switched off.
# Enabled: 02 (or 06, 00) followed by eight zero bytes; disabled: 03 or 07 and the time the user
# switched it off (crystalidea/uninstall-tool issue #180, zzzgydi/auto-launch issue #7 and pull
# request #8, Teamwork/node-auto-launch pull request #129). No value at all: Windows starts it.
STARTUP_APPROVED_KEY = r"Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run"
APPROVED_ENABLED = bytes([2]) + bytes(11)
DESKTOP_NAME = "byod-agent.desktop"


def windows_command(argv: Sequence[str]) -> str:
    """The Run value: each argument quoted the way CommandLineToArgvW splits it back."""
    out = []
    for a in argv:
        if '"' in a:
            raise ValueError("a double quote cannot appear in an autostart argument")
        out.append(f'"{a}"' if (" " in a or "\t" in a or not a) else a)
    return " ".join(out)


def startup_approved(value: bytes | None) -> bool:
    """False when Task Manager or Settings switched the Run entry off (pure; see above)."""
    if value is None or len(value) == 0:
        return True
    return not (value[0] & 1 or any(value[4:12]))


def launch_agent_plist(argv: Sequence[str]) -> bytes:
    """~/Library/LaunchAgents/<LABEL>.plist (launchd.plist(5)): run once at login, no KeepAlive."""
    data = {"Label": LABEL, "ProgramArguments": list(argv), "RunAtLoad": True,
            "ProcessType": "Interactive", "LimitLoadToSessionType": "Aqua"}
    return plistlib.dumps(data, fmt=plistlib.FMT_XML)


def _desktop_quote(arg: str) -> str:
    # Desktop Entry spec, "The Exec key": quote reserved characters, escape " ` $ \ inside quotes;
    # '%' must be doubled since it starts a field code.
    arg = arg.replace("%", "%%")
    if not any(ch in arg for ch in " \t\n\"'\\><~|&;$*?#()`"):
        return arg
    escaped = "".join("\\" + ch if ch in '"`$\\' else ch for ch in arg)
    return f'"{escaped}"'


def xdg_desktop_entry(argv: Sequence[str], name: str, comment: str) -> str:
    """$XDG_CONFIG_HOME/autostart/byod-agent.desktop (XDG Autostart spec)."""
    for field in (name, comment):
        if any(ch in field for ch in "\n\r"):
            raise ValueError("a desktop entry field cannot contain a line break")
    exec_line = " ".join(_desktop_quote(a) for a in argv)
    return ("[Desktop Entry]\nType=Application\n"
            f"Name={name}\nComment={comment}\nExec={exec_line}\n"
            "Icon=byod-agent\nTerminal=false\nX-GNOME-Autostart-enabled=true\n")


def launch_agent_path(home: Path) -> Path:
    return home / "Library" / "LaunchAgents" / f"{LABEL}.plist"


def xdg_system_autostart_paths(env: Mapping[str, str]) -> list[Path]:
    """Where a package puts the entry for every user (the .deb: /etc/xdg/autostart)."""
    dirs = env.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    return [Path(d) / "autostart" / DESKTOP_NAME for d in dirs.split(":") if d]


def desktop_hidden(text: str) -> bool:
    """``Hidden=true`` in the entry: the XDG autostart spec's way to switch an entry off."""
    return any(line.strip().replace(" ", "").lower() == "hidden=true"
               for line in text.splitlines())


HIDDEN_ENTRY = ("[Desktop Entry]\nType=Application\nName=BYOD Agent\n"
                "# Switched off by the user: hides the system-wide entry of the same name.\n"
                "Hidden=true\n")


def xdg_autostart_path(home: Path, env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(home / ".config")
    return Path(base) / "autostart" / DESKTOP_NAME


class RunKey(Protocol):
    """The HKCU Run key; ``WinregRunKey`` in production, a dict-backed fake in tests."""

    def get(self, name: str) -> str | None: ...
    def set(self, name: str, value: str) -> None: ...
    def delete(self, name: str) -> None: ...


class ApprovedKey(Protocol):
    """HKCU ...\\Explorer\\StartupApproved\\Run; ``WinregApprovedKey`` in production."""

    def get(self, name: str) -> bytes | None: ...
    def set(self, name: str, value: bytes) -> None: ...


class WinregApprovedKey:
    def __init__(self) -> None:
        self._winreg = importlib.import_module("winreg")

    def get(self, name: str) -> bytes | None:
        w = self._winreg
        try:
            with w.OpenKey(w.HKEY_CURRENT_USER, STARTUP_APPROVED_KEY) as key:
                value, kind = w.QueryValueEx(key, name)
        except OSError:
            return None
        return bytes(value) if kind == w.REG_BINARY and isinstance(value, bytes) else None

    def set(self, name: str, value: bytes) -> None:
        w = self._winreg
        with w.CreateKey(w.HKEY_CURRENT_USER, STARTUP_APPROVED_KEY) as key:
            w.SetValueEx(key, name, 0, w.REG_BINARY, value)


class WinregRunKey:
    """HKCU\\...\\Run through winreg (imported lazily: it exists only on Windows)."""

    def __init__(self) -> None:
        self._winreg = importlib.import_module("winreg")

    def get(self, name: str) -> str | None:
        w = self._winreg
        try:
            with w.OpenKey(w.HKEY_CURRENT_USER, RUN_KEY) as key:
                value, _ = w.QueryValueEx(key, name)
        except OSError:
            return None
        return str(value)

    def set(self, name: str, value: str) -> None:
        w = self._winreg
        with w.CreateKey(w.HKEY_CURRENT_USER, RUN_KEY) as key:
            w.SetValueEx(key, name, 0, w.REG_SZ, value)

    def delete(self, name: str) -> None:
        w = self._winreg
        try:
            with w.OpenKey(w.HKEY_CURRENT_USER, RUN_KEY, 0, w.KEY_SET_VALUE) as key:
                w.DeleteValue(key, name)
        except FileNotFoundError:
            pass


class Autostart:
    """Enable, disable and query start-at-login for one OS."""

    def __init__(self, os_name: str, home: Path, env: Mapping[str, str],
                 run_key: RunKey | None = None, approved_key: ApprovedKey | None = None) -> None:
        self.os_name = os_name
        self.home = home
        self.env = env
        self._run_key = run_key
        self._approved_key = approved_key

    @property
    def approved_key(self) -> ApprovedKey:
        if self._approved_key is None:
            self._approved_key = WinregApprovedKey()
        return self._approved_key

    def windows_state(self) -> str:
        """on | off | blocked (our Run value is there but Task Manager/Settings switched it off)."""
        if self.run_key.get(LABEL) is None:
            return "off"
        return "on" if startup_approved(self.approved_key.get(LABEL)) else "blocked"

    @property
    def run_key(self) -> RunKey:
        if self._run_key is None:
            self._run_key = WinregRunKey()
        return self._run_key

    def path(self) -> Path | None:
        if self.os_name == "macos":
            return launch_agent_path(self.home)
        if self.os_name == "linux":
            return xdg_autostart_path(self.home, self.env)
        return None

    def _system_entry(self) -> Path | None:
        if self.os_name != "linux":
            return None
        return next((p for p in xdg_system_autostart_paths(self.env) if p.is_file()), None)

    def state(self) -> str:
        """on | off | blocked ("blocked" only on Windows: Task Manager or Settings switched our
        Run entry off; the settings dialog explains it and how to turn it back on)."""
        if self.os_name == "windows":
            return self.windows_state()
        return "on" if self.is_enabled() else "off"

    def is_enabled(self) -> bool:
        if self.os_name == "windows":
            return self.windows_state() == "on"
        p = self.path()
        if p is not None and p.is_file():  # the user's own entry wins over the system one
            try:
                return not desktop_hidden(p.read_text(encoding="utf-8", errors="replace"))
            except OSError:
                return False
        return self._system_entry() is not None

    def enable(self, argv: Sequence[str], name: str, comment: str) -> None:
        if self.os_name == "windows":
            self.run_key.set(LABEL, windows_command(argv))
            # The user's explicit "on" in our settings also undoes an earlier "off" in Task
            # Manager; otherwise the switch would say on while Windows skips the entry.
            if not startup_approved(self.approved_key.get(LABEL)):
                self.approved_key.set(LABEL, APPROVED_ENABLED)
            return
        p = self.path()
        if p is None:
            raise OSError(f"start at login is not supported on {self.os_name}")
        p.parent.mkdir(parents=True, exist_ok=True)
        if self.os_name == "macos":
            p.write_bytes(launch_agent_plist(argv))
        else:
            p.write_text(xdg_desktop_entry(argv, name, comment), encoding="utf-8")

    def disable(self) -> None:
        if self.os_name == "windows":
            self.run_key.delete(LABEL)
            return
        p = self.path()
        if p is None:
            return
        if self._system_entry() is not None:
            # Deleting our file would leave the package's entry in /etc/xdg/autostart in force.
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(HIDDEN_ENTRY, encoding="utf-8")
        else:
            p.unlink(missing_ok=True)


def first_run_default(*, installed: bool, state: str, locked: bool) -> bool:
    """Turn start at login on at the first tray start? Only for an installed build (a
    PyInstaller build: the MSI and the .deb already write their entry, the macOS .app does not),
    only when it is plainly off: never over IT's lock, never over the user's own "off" in Task
    Manager ("blocked"), never for a developer's ``python -m agent``."""
    return installed and not locked and state == "off"
