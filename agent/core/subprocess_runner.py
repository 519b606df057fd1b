"""The one way the agent runs an external program.

Probes never call ``subprocess`` directly: they get a ``Runner`` so tests can feed recorded outputs
and faults, and so every call is bounded in time, locale-neutral and free of shell parsing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from agent.core.errors import CommandFailed, ProbeTimeout, ToolMissing

# Tools localize their output; we parse only the C locale.
NEUTRAL_LOCALE = {"LC_ALL": "C", "LANG": "C", "LANGUAGE": ""}
# Everything a child may inherit; the rest of the environment (tokens, proxies...) stays with us.
_PASSTHROUGH = ("PATH", "HOME", "USER", "LOGNAME", "SYSTEMROOT", "WINDIR", "COMSPEC", "TEMP", "TMP",
                "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_DIRS",
                "GSETTINGS_BACKEND",  # gsettings must read the backend the session writes to
                "DISPLAY", "WAYLAND_DISPLAY", "PROGRAMDATA", "PROGRAMFILES", "USERPROFILE")


# The tray must not flash a console window for every probe on Windows.
_NO_WINDOW = getattr(subprocess, "CREATE_NO_WINDOW", 0)


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")

    def check(self, *ok: int) -> CommandResult:
        """Raise CommandFailed unless the exit code is one of ``ok`` (default 0)."""
        if self.returncode not in (ok or (0,)):
            raise CommandFailed(self.argv[0], self.returncode,
                                self.stderr.decode("utf-8", errors="replace"))
        return self


class Runner(Protocol):
    def run(self, argv: Sequence[str], *, timeout: float | None = None,
            stdin: bytes | None = None) -> CommandResult: ...

    def which(self, tool: str) -> str | None: ...


class SubprocessRunner:
    """Runs programs found on ``env['PATH']`` with the C locale and a hard timeout."""

    def __init__(self, env: Mapping[str, str] | None = None, default_timeout: float = 10.0,
                 deadline: float | None = None) -> None:
        base = dict(os.environ if env is None else env)
        self._env = {k: v for k, v in base.items() if k in _PASSTHROUGH}
        self._env.update(NEUTRAL_LOCALE)
        self._path = base.get("PATH", "")
        self._default_timeout = default_timeout
        self._deadline = deadline  # time.monotonic() value after which nothing new may start

    def which(self, tool: str) -> str | None:
        return shutil.which(tool, path=self._path)

    def run(self, argv: Sequence[str], *, timeout: float | None = None,
            stdin: bytes | None = None) -> CommandResult:
        tool = argv[0]
        exe = self.which(tool)
        if exe is None:
            raise ToolMissing(tool)
        limit = self._default_timeout if timeout is None else timeout
        if self._deadline is not None:
            limit = min(limit, self._deadline - time.monotonic())
        if limit <= 0:
            raise ProbeTimeout(tool, 0)
        try:
            proc = subprocess.run([exe, *argv[1:]], input=stdin, capture_output=True,
                                  timeout=limit, env=self._env, check=False,
                                  stdin=None if stdin is not None else subprocess.DEVNULL,
                                  creationflags=_NO_WINDOW)
        except subprocess.TimeoutExpired as exc:  # run() has already killed the child
            raise ProbeTimeout(tool, limit) from exc
        except OSError as exc:  # not executable, vanished between which() and exec
            raise ToolMissing(tool) from exc
        return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
