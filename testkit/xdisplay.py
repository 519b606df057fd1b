"""A real X display (Xvfb), optionally with a real system tray host (trayer), for tests and
benchmarks (../shared/RECIPES.md). Each caller picks its own range of display numbers so the
benchmarks and the tests never take the same one."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from testkit.procs import stop, wait_for


def free_display(numbers: range) -> int:
    for n in numbers:
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number")


@contextlib.contextmanager
def x_display(n: int, log_dir: Path, *, size: tuple[int, int] = (1280, 1024),
              tray: bool = False, tray_settle: float = 0.5,
              drop_env: Sequence[str] = ("WAYLAND_DISPLAY", "QT_QPA_PLATFORM"),
              ) -> Iterator[dict[str, str]]:
    """Xvfb on ``:n`` (and trayer at the top right), until the block ends; yields the env."""
    env = dict(os.environ, DISPLAY=f":{n}")
    for var in drop_env:
        env.pop(var, None)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen(
            # -noreset: without it the server resets when its last client (the xdpyinfo probe
            # below) disconnects, and a client connecting during that reset (openbox) fails
            # with "Failed to open the display" (seen about 1 run in 5 here).
            ["Xvfb", f":{n}", "-screen", "0", f"{size[0]}x{size[1]}x24", "-nolisten", "tcp",
             "-noreset"],
            stdout=subprocess.DEVNULL, stderr=(log_dir / "xvfb.log").open("wb")))
        wait_for(lambda: subprocess.run(["xdpyinfo"], env=env, capture_output=True,
                                        check=False).returncode == 0, 10, "Xvfb")
        if tray:
            procs.append(subprocess.Popen(
                ["trayer", "--edge", "top", "--align", "right", "--widthtype", "pixel",
                 "--width", "200", "--height", "32", "--transparent", "false"], env=env,
                stdout=subprocess.DEVNULL, stderr=(log_dir / "trayer.log").open("wb")))
            time.sleep(tray_settle)  # trayer claims the _NET_SYSTEM_TRAY selection
        yield env
    finally:
        for p in reversed(procs):
            stop(p)
