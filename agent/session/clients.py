"""Find the RDP client on this PC (I/O) and read its version (pure)."""

from __future__ import annotations

import re

from agent.core.errors import ProbeError
from agent.core.subprocess_runner import Runner
from agent.session.launch import DEFAULT_CLIENTS, ClientInfo

_FREERDP_VERSION = re.compile(r"FreeRDP version (\d+)\.(\d+)")


def needs_credentials(platform: str) -> bool:
    """FreeRDP (Linux) has no credential dialog: the agent asks and passes them on. mstsc and
    Windows App ask the user themselves."""
    return platform == "linux"


def parse_freerdp_version(text: str) -> int | None:
    """'This is FreeRDP version 2.11.7 (2.11.7)' -> 2."""
    m = _FREERDP_VERSION.search(text)
    return int(m.group(1)) if m else None


def find_client(platform: str, runner: Runner | None) -> ClientInfo | None:
    """The client to launch, or None when none is installed.

    Only the running platform is probed; planning for another platform (``--platform``) uses the
    client staff there have by default (mstsc on Windows, Windows App on macOS).
    """
    if runner is None or platform != "linux":
        return DEFAULT_CLIENTS.get(platform)
    for program in ("xfreerdp3", "xfreerdp"):
        path = runner.which(program)
        if path is None:
            continue
        try:
            major = parse_freerdp_version(runner.run([program, "/version"], timeout=5).text())
        except ProbeError:
            major = None
        if major is None:
            # FreeRDP 2 cannot even print its version without a display (RECIPES); FreeRDP 3
            # can, and installs as xfreerdp3 on Debian. So an unreadable xfreerdp is 2.x.
            major = 3 if program == "xfreerdp3" else 2
        if major in (2, 3):
            return ClientInfo(program, f"xfreerdp{major}", path)
    return None
