"""Shared pieces: the result shape, medians, scratch user dirs, processes and a real X tray."""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from testkit.xdisplay import free_display, x_display

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"
T = TypeVar("T")


@dataclass(frozen=True)
class Options:
    """``quick`` shrinks every size and duration so the smoke test can run the whole chain."""

    quick: bool = False
    repeats: int = 5

    def pick(self, full: T, quick: T) -> T:
        return quick if self.quick else full


@dataclass
class Result:
    """One benchmark: the JSON ratios (None = could not run) and human-readable table rows."""

    name: str
    ratios: dict[str, float | None]
    rows: list[str] = field(default_factory=list)
    reason: str | None = None

    @classmethod
    def skipped(cls, name: str, keys: tuple[str, ...], reason: str) -> Result:
        return cls(name, dict.fromkeys(keys), [f"not run: {reason}"], reason)


class Unavailable(Exception):
    """A component this benchmark needs is missing here: report null with this reason."""


def python() -> str:
    return str(PYTHON) if PYTHON.exists() else sys.executable


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def need_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise Unavailable(f"tools not installed: {', '.join(missing)}")


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"byod-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def scratch_env(root: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A throwaway user: HOME, XDG dirs and TMPDIR (Qt's single-instance socket lives there)."""
    env = dict(os.environ if base is None else base)
    home = root / "home"
    for sub in ("", ".config", ".local/share", ".local/state", ".cache", "tmp"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local/share"),
               XDG_STATE_HOME=str(home / ".local/state"), XDG_CACHE_HOME=str(home / ".cache"),
               TMPDIR=str(home / "tmp"), BYOD_AGENT_LANG="en", PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = str(REPO)
    return env


@contextlib.contextmanager
def desktop(log_dir: Path) -> Iterator[dict[str, str]]:
    """Xvfb + trayer (RECIPES.md): a real X server with a real system tray host."""
    need_tools("Xvfb", "xdpyinfo", "trayer", "xdotool")
    try:
        n = free_display(range(150, 250))
    except RuntimeError as exc:
        raise Unavailable(str(exc)) from exc
    # both apps take the same path: XEmbed into trayer, no SNI over D-Bus
    with x_display(n, log_dir, tray=True, tray_settle=0.7,
                   drop_env=("WAYLAND_DISPLAY", "QT_QPA_PLATFORM",
                             "DBUS_SESSION_BUS_ADDRESS")) as env:
        yield env


def visible_tray_icon(pid: int, env: Mapping[str, str]) -> bool:
    """True once a window of ``pid`` is mapped inside the tray strip (x > 0).

    Looked up from outside through X itself, so the agent and the minimal app are timed the same
    way, with no help from either.
    """
    found = subprocess.run(["xdotool", "search", "--onlyvisible", "--pid", str(pid)],
                           env=dict(env), capture_output=True, text=True, check=False)
    for wid in found.stdout.split():
        geo = subprocess.run(["xdotool", "getwindowgeometry", "--shell", wid], env=dict(env),
                             capture_output=True, text=True, check=False)
        values = dict(line.split("=", 1) for line in geo.stdout.splitlines() if "=" in line)
        if int(values.get("X", "0")) > 0 and int(values.get("WIDTH", "0")) > 1:
            return True
    return False
