"""``byod-agent`` with no arguments: the tray where a desktop exists, the table otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

from agent.commands.tray import has_display
from tests.conftest import REPO


def test_display_detection() -> None:
    assert has_display({}, "win32") and has_display({}, "darwin")
    assert not has_display({}, "linux")
    assert has_display({"DISPLAY": ":0"}, "linux")
    assert has_display({"WAYLAND_DISPLAY": "wayland-0"}, "linux")


def test_bare_command_without_display_prints_the_table() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["LANG"] = "ja_JP.UTF-8"
    proc = subprocess.run([sys.executable, "-m", "agent"], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=60, check=False)
    assert "BYOD Agent: このPCはテレワークに使える状態ですか?" in proc.stdout, proc.stderr
    assert "PySide6" not in proc.stderr


def test_tray_is_registered() -> None:
    proc = subprocess.run([sys.executable, "-m", "agent", "tray", "--help"], capture_output=True,
                          text=True, cwd=REPO, timeout=30, check=True)
    assert "--open-status" in proc.stdout
