"""``diag view``: a hostile bundle's fields are shown as text, never interpreted as markup; the
summary leads in the desk's language; on a real 1366x768 screen every button is on screen."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPlainTextEdit

from agent.diagnostics import render
from agent.diagnostics.reader import open_bundle
from testkit.procs import stop, wait_for
from testkit.xdisplay import free_display, x_display
from tests.conftest import REPO
from tests.unit.test_bundle_reader import _good, _with_manifest, _zip
from tests.unit.test_bundle_view import RAW, _digest
from ui.diag_view import DiagView

pytestmark = pytest.mark.gui
SHORT = "<b>x</b><img src=x onerror=1>"  # fits the manifest's 20/40-character fields
EVIL = "<script>alert(1)</script><b>bold</b><img src=x onerror=alert(2)>"  # <= 80 (schema)


def _hostile_digest() -> dict:  # type: ignore[type-arg]
    # The structure is what the reader's schema accepts (agent/diagnostics/schema.py refuses
    # wrong types as hostile); the hostile part is the text in every free-text field.
    posture = {"host": {"os": EVIL}, "compliant": False, "checks": [
        {"id": EVIL, "status": "fail", "summary": {"ja": EVIL, "en": EVIL},
         "evidence": {EVIL: EVIL}, "remediation": {"en": {"title": EVIL}}},
        {"id": "x", "status": "fail", "evidence": [1, [2, [3]]]}]}
    conn = {"targets": [{"target": EVIL, "endpoint": EVIL, "dns": {"status": EVIL[:40]},
                         "tls": {"status": "fail", "detail": EVIL}}]}
    files = [("posture.json", json.dumps(posture).encode()),
             ("decision.json", json.dumps({"correlation_id": EVIL}).encode()),
             ("connectivity.json", json.dumps(conn).encode()),
             ("logs/agent.log", f"ERROR {EVIL}\n".encode())]
    man = json.loads(dict(_with_manifest(files))["manifest.json"])
    # The manifest's fields are short by schema (agent/diagnostics/schema.py): short markup.
    man.update(bundle_id=SHORT[:20], ticket=SHORT, agent_version=SHORT, created_at=SHORT)
    entries = [*files, ("manifest.json", json.dumps(man).encode())]
    return render.digest(open_bundle(_zip(entries)))


def _texts(view: DiagView) -> list[str]:
    return [lbl.text() for lbl in view.findChildren(QLabel)]


def test_hostile_fields_stay_plain_text(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = DiagView(_hostile_digest(), "ja")
    qtbot.addWidget(view)
    view.show()
    labels = view.findChildren(QLabel)
    assert labels and all(lbl.textFormat() == Qt.TextFormat.PlainText for lbl in labels)
    assert any(EVIL in lbl.text() for lbl in labels)  # shown literally, not rendered
    assert any(SHORT[:20] in lbl.text() for lbl in labels)
    panes = "\n".join(p.toPlainText() for p in view.findChildren(QPlainTextEdit))
    assert EVIL in panes  # evidence, connectivity and log lines, as text
    assert view.logs is not None and EVIL in view.logs.toPlainText()
    assert view.connectivity is not None and EVIL in view.connectivity.toPlainText()
    assert "改ざんされています" not in view.integrity.text()  # hashes match: unsigned instead
    assert "署名がありません" in view.integrity.text()


def test_a_real_bundle_in_english(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    digest = render.digest(open_bundle(_good(tmp_path, {"agent.log": "ERROR boom\n"})))
    view = DiagView(digest, "en", title="b.zip")
    qtbot.addWidget(view)
    assert [b.line.check_id for b in view.check_boxes] == ["disk_encryption"]
    assert view.fine_fold is not None and [b.line.check_id for b in view.fine_boxes] == [
        "antivirus"]
    assert view.logs is not None and "boom" in view.logs.toPlainText()
    assert "b.zip" in view.windowTitle()
    assert "Integrity: unsigned" in view.integrity.text()


def test_summary_first_in_japanese_and_sections_folded(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = DiagView(_digest(), "ja")
    qtbot.addWidget(view)
    view.show()
    assert view.decision.text().startswith("判定: 下の問題を直すまで")
    assert view.summary.text() == "6項目中5項目に対応が必要です"
    texts = _texts(view)
    assert any("demo-city(通し番号 1)" in x for x in texts)
    assert any(x == "職員への表示: ディスクの暗号化: 直すまで接続できません。" for x in texts)
    visible = [lbl.text() for lbl in view.findChildren(QLabel) if lbl.isVisible()]
    raw = [w for x in visible for w in RAW.findall(x)]
    assert raw == [], raw  # no raw pass/standard/false/English integrity in a Japanese window
    # Evidence, passes and connectivity are folded until asked for.
    first = view.check_boxes[0]
    assert first.line.status == "fail" and not first.evidence.isVisible()
    first.fold.button.click()
    assert first.evidence.isVisible() and "いいえ" in first.evidence.toPlainText()
    assert view.fine_fold is not None and not view.fine_boxes[0].isVisible()
    assert view.more_fold is not None and view.connectivity is not None
    assert not view.connectivity.isVisible()
    assert view.logs is None  # the bundle has no log lines: no pane at all


def test_no_connectivity_and_no_logs_no_section(qtbot) -> None:  # type: ignore[no-untyped-def]
    digest = _digest(connectivity=None)
    view = DiagView(digest, "ja")
    qtbot.addWidget(view)
    assert view.more_fold is None and view.connectivity is None and view.logs is None


def _inside(r: list[int], area: list[int]) -> bool:
    x, y, w, h = r
    ax, ay, aw, ah = area
    return ax <= x and ay <= y and x + w <= ax + aw and y + h <= ay + ah and w > 0 and h > 0


@pytest.mark.real
@pytest.mark.skipif(sys.platform != "linux" or not shutil.which("Xvfb")
                    or not shutil.which("openbox"), reason="needs Xvfb and openbox")
def test_on_a_1366x768_screen_every_button_is_on_screen(tmp_path: Path) -> None:
    n = free_display(range(190, 220))
    with x_display(n, tmp_path, size=(1366, 768)) as display_env:
        env = dict(display_env, QT_QPA_PLATFORM="xcb", LANG="ja_JP.UTF-8", HOME=str(tmp_path),
                   TMPDIR=str(tmp_path), PYTHONPATH=str(REPO))
        wm = subprocess.Popen(["openbox", "--sm-disable"], env=env, stdout=subprocess.DEVNULL,
                              stderr=(tmp_path / "openbox.log").open("wb"))
        try:
            wait_for(lambda: b"_NET_SUPPORTING_WM_CHECK(WINDOW)" in subprocess.run(
                ["xprop", "-root", "_NET_SUPPORTING_WM_CHECK"], env=env, capture_output=True,
                check=False).stdout, 30, "openbox")
            shot = tmp_path / "diag_view_ja.png"
            out = subprocess.run([sys.executable, str(Path(__file__).with_name(
                "diag_view_probe.py")), str(shot)], env=env, cwd=REPO, capture_output=True,
                text=True, timeout=120, check=False)
        finally:
            stop(wm)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for state in ("folded", "unfolded"):
        r = result[state]
        area = r["screen"]
        assert area[2] <= 1366 and area[3] <= 768
        assert _inside(r["frame"], area), (state, r)  # title bar included
        assert [b["text"] for b in r["buttons"]] == ["閉じる"], r["buttons"]
        for b in r["buttons"]:
            assert _inside(b["rect"], area), (state, b)
        assert not r["sideways"], state  # rows wrap: nothing cut off at the right
    assert result["unfolded"]["scrolls"]  # unfolded, the rows scroll inside the window
    assert result["summary"] == "6項目中5項目に対応が必要です" and result["first"] == "fail"
    assert result["font"] == "Noto Sans CJK JP"
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("BYOD_SAVE_SCREENSHOTS")
    if keep:
        shutil.copy(shot, Path(keep) / shot.name)


def test_the_command_refuses_a_hostile_file_before_any_window(tmp_path: Path) -> None:
    evil = tmp_path / "evil.zip"
    evil.write_bytes(_zip([("../../etc/evil", b"x")]))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "BYOD_AGENT_LANG": "en"}
    proc = subprocess.run([sys.executable, "-m", "agent", "diag", "view", str(evil)],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=60,
                          check=False, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and "unsafe member name" in proc.stderr
