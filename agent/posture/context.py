"""Everything a probe may touch, handed in so tests can replace any of it.

A probe reads files under ``root`` (``/`` in production, a recorded tree in tests), runs programs
through ``runner``, lists processes through ``processes`` and, on Windows, reads the one batched
snapshot that a single PowerShell call produced for all checks.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psutil

from agent.core.errors import ParseError, SourceMissing
from agent.core.osname import current_os as current_os  # noqa: PLC0414 (re-exported)
from agent.core.subprocess_runner import Runner, SubprocessRunner
from agent.posture import windows_snapshot
from agent.posture.settings import PostureSettings


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    name: str
    exe: str
    cmdline: tuple[str, ...]


def list_processes() -> list[ProcInfo]:
    out: list[ProcInfo] = []
    for p in psutil.process_iter(["pid", "name", "exe", "cmdline"]):
        info = p.info
        out.append(ProcInfo(info["pid"], info.get("name") or "", info.get("exe") or "",
                            tuple(info.get("cmdline") or ())))
    return out


class _Once:
    """Computes a value at most once, shared by the checks that run in parallel."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._fn = fn
        self._lock = threading.Lock()
        self._done = False
        self._value: Any = None
        self._error: BaseException | None = None

    def get(self) -> Any:
        with self._lock:
            if not self._done:
                try:
                    self._value = self._fn()
                except BaseException as exc:  # re-raised to every caller
                    self._error = exc
                self._done = True
        if self._error is not None:
            raise self._error
        return self._value


@dataclass
class ProbeContext:
    os: str
    runner: Runner
    root: Path = Path("/")
    home: Path = field(default_factory=Path.home)
    env: Mapping[str, str] = field(default_factory=dict)
    settings: PostureSettings = field(default_factory=PostureSettings)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    processes: Callable[[], list[ProcInfo]] = list_processes
    windows_snapshot_source: Callable[[], Mapping[str, Any]] | None = None
    _snapshot: _Once | None = field(default=None, init=False, repr=False)

    @property
    def today(self) -> date:
        return self.settings.today_override or self.now.date()

    def path(self, absolute: str) -> Path:
        """Map an absolute OS path into ``root`` (so tests can hand a recorded tree)."""
        return self.root / absolute.lstrip("/")

    def read_text(self, absolute: str, limit: int = 1 << 20) -> str:
        p = self.path(absolute)
        try:
            with p.open("rb") as fh:
                data = fh.read(limit + 1)
        except OSError as exc:
            raise SourceMissing(absolute, exc.strerror or type(exc).__name__) from exc
        if len(data) > limit:
            raise ParseError(absolute, f"larger than {limit} bytes")
        return data.decode("utf-8", errors="replace")

    def windows_section(self, name: str) -> Mapping[str, Any]:
        """One section of the batched Windows snapshot; its own error becomes a ProbeError."""
        if self._snapshot is None:
            budget = self.settings.snapshot_timeout_s
            source = self.windows_snapshot_source or (
                lambda: windows_snapshot.collect(self.runner, budget))
            self._snapshot = _Once(source)
        snap = self._snapshot.get()
        if (mode := windows_snapshot.language_mode(snap)) is not None:
            raise windows_snapshot.ConstrainedLanguage(mode)
        section = snap.get(name)
        if not isinstance(section, Mapping):
            raise ParseError("Windows snapshot", f"section {name!r} missing")
        if "error" in section and len(section) == 1:
            raise SourceMissing(f"Windows {name}", str(section["error"]))
        return section


def default_context(settings: PostureSettings | None = None,
                    env: Mapping[str, str] | None = None) -> ProbeContext:
    settings = settings or PostureSettings()
    env = dict(os.environ if env is None else env)
    deadline = time.monotonic() + settings.longest_budget_s()
    runner = SubprocessRunner(env, default_timeout=settings.probe_timeout_s, deadline=deadline)
    home = Path(env.get("HOME") or env.get("USERPROFILE") or str(Path.home()))
    return ProbeContext(os=current_os(), runner=runner, home=home, env=env, settings=settings)
