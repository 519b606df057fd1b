"""The status window on the laptop screens staff have (1366x768, 1280x800): real Xvfb, a real
window manager (openbox: title bar, placement, work area), Japanese text in Noto Sans CJK JP.

Every button is on screen, the window fits the available area, failing items come first under
a summary line. Screenshots go to the test's directory; with ``BYOD_SAVE_SCREENSHOTS=DIR`` they
are also copied there (docs/screenshots/ was made that way).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.procs import stop, wait_for
from testkit.xdisplay import free_display, x_display

pytestmark = [pytest.mark.gui, pytest.mark.real]
REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("screen_probe.py")


def _inside(r: list[int], area: list[int]) -> bool:
    x, y, w, h = r
    ax, ay, aw, ah = area
    return ax <= x and ay <= y and x + w <= ax + aw and y + h <= ay + ah and w > 0 and h > 0


@pytest.mark.skipif(sys.platform != "linux" or not shutil.which("Xvfb")
                    or not shutil.which("openbox"), reason="needs Xvfb and openbox")
@pytest.mark.parametrize("size", [(1366, 768), (1280, 800)])
def test_status_window_fits_and_every_button_is_on_screen(tmp_path: Path,
                                                          size: tuple[int, int]) -> None:
    n = free_display(range(160, 190))
    with x_display(n, tmp_path, size=size) as display_env:
        env = dict(display_env, QT_QPA_PLATFORM="xcb", LANG="ja_JP.UTF-8", HOME=str(tmp_path),
                   TMPDIR=str(tmp_path), PYTHONPATH=str(REPO))
        wm = subprocess.Popen(["openbox", "--sm-disable"], env=env, stdout=subprocess.DEVNULL,
                              stderr=(tmp_path / "openbox.log").open("wb"))
        try:
            wait_for(lambda: b"_NET_SUPPORTING_WM_CHECK(WINDOW)" in subprocess.run(
                ["xprop", "-root", "_NET_SUPPORTING_WM_CHECK"], env=env, capture_output=True,
                check=False).stdout, 30, "openbox")
            shot = tmp_path / f"status-{size[0]}x{size[1]}-ja.png"
            out = subprocess.run([sys.executable, str(PROBE), str(shot)], env=env, cwd=REPO,
                                 capture_output=True, text=True, timeout=120, check=False)
        finally:
            stop(wm)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    area = result["screen"]
    assert area[2] <= size[0] and area[3] <= size[1]
    assert _inside(result["frame"], area), result  # title bar included
    texts = {b["text"] for b in result["buttons"]}
    assert {"もう一度確認", "閉じる"} <= texts, texts
    assert any("接続" in t for t in texts), texts
    for b in result["buttons"]:
        assert _inside(b["rect"], area), b
    assert result["summary"].endswith("項目に対応が必要です</b>")  # "6項目中3項目に…"
    assert result["first_row_status"] != "pass"  # failing items first
    assert result["font"] == "Noto Sans CJK JP"  # fonts-noto-cjk (.ci/apt-packages.txt)
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("BYOD_SAVE_SCREENSHOTS")
    if keep:
        shutil.copy(shot, Path(keep) / shot.name)
