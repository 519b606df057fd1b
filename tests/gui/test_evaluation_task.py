"""The tray's evaluation worker as a real child process (ui/evaluation_task.py): an answer becomes
the view; a child that hangs is killed at its time limit, one that crashes, says nothing, says
garbage or cannot start is the error state with its reason (never a pass, never "checking"
forever); the UI thread keeps running meanwhile. And the real tray, started as staff start it,
has not loaded the policy, posture, keystore, cryptography or keyring code after its first
evaluation (read through ui/app.py's BYOD_AGENT_DEBUG_MODULES_FILE hook)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QTimer

from agent.core import i18n
from agent.core.messages import Message
from agent.presentation.evaluation import EvaluationResult
from agent.presentation.status_view import TrayState, failed
from testkit.procs import stop, wait_for
from ui.evaluation_task import WorkerTask
from ui.tray_checks import CheckScheduler

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[2]


def _line() -> str:
    return EvaluationResult({lang: failed(lang, "from the child") for lang in i18n.LANGS},
                            cert_read=True).to_wire()


def _child(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _run(qtbot: Any, argv: list[str], timeout_ms: int = 20_000) -> tuple[str, object]:
    task = WorkerTask(argv, timeout_ms)
    got: list[tuple[str, object]] = []
    task.result.connect(lambda r: got.append(("result", r)))
    task.error.connect(lambda e: got.append(("error", e)))
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    with qtbot.waitSignal(task.done, timeout=timeout_ms + 10_000):
        assert task.start()
        assert not task.start()  # one at a time
    timer.stop()
    assert not task.running and len(got) == 1
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert not gaps or max(gaps) < 0.5  # the UI thread never waited for the child
    return got[0]


def test_an_answer_is_the_result(qtbot: Any) -> None:
    kind, value = _run(qtbot, _child(f"import sys; sys.stdout.write({_line()!r} + '\\n')"))
    assert kind == "result" and isinstance(value, EvaluationResult)
    assert value.view("ja").error == "from the child" and value.cert_read


@pytest.mark.parametrize(("code", "key"), [
    ("import os; os.abort()", "ui.worker.crashed"),
    ("import sys; sys.exit(3)", "ui.worker.no_answer"),
    ("print('hello'); print('world')", "ui.worker.unreadable"),
    ("import sys; sys.stdout.write('x' * (5 * 1024 * 1024)); import time; time.sleep(30)",
     "ui.worker.too_large"),
])
def test_a_broken_child_is_an_error_with_its_reason(qtbot: Any, code: str, key: str) -> None:
    kind, value = _run(qtbot, _child(code))
    assert kind == "error" and isinstance(value, Message) and value.key == key
    assert "{" not in i18n.render(value, "ja")


def test_a_hanging_child_is_killed_at_its_time_limit(qtbot: Any) -> None:
    t0 = time.monotonic()
    kind, value = _run(qtbot, _child("import time; time.sleep(60)"), timeout_ms=1000)
    assert kind == "error" and isinstance(value, Message) and value.key == "ui.worker.timeout"
    assert time.monotonic() - t0 < 10


def test_a_missing_program_is_an_error(qtbot: Any, tmp_path: Path) -> None:
    kind, value = _run(qtbot, [str(tmp_path / "no-such-byod-agent")])
    assert kind == "error" and isinstance(value, Message) and value.key == "ui.worker.no_start"


def test_the_scheduler_shows_a_timeout_as_the_error_state(qtbot: Any) -> None:
    sched = CheckScheduler(None, None, lambda: "ja", wake=None, recheck_ms=3_600_000,
                           worker_argv=_child("import time; time.sleep(60)"),
                           worker_timeout_ms=800)
    with qtbot.waitSignal(sched.finished, timeout=15_000) as blocker:
        sched.recheck()
    view = blocker.args[0]
    assert view.state is TrayState.ERROR and not view.connect_allowed
    assert view.error == i18n.text("ui.worker.timeout", "ja", seconds=1)
    assert sched.rebuild().state is TrayState.ERROR  # a language switch keeps the reason
    sched.stop()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XDG_", "DBUS_")) and k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return {**env, "HOME": str(tmp_path), "TMPDIR": str(tmp_path), "PYTHONPATH": str(REPO),
            "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_STATE_HOME": str(tmp_path / "state"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"), "BYOD_AGENT_LANG": "ja", **extra}


HEAVY = ("agent.posture", "agent.policy", "agent.keystore", "cryptography", "keyring",
         "requests", "tuf", "securesystemslib", "pyrage", "psutil")


def heavy_modules(names: list[str]) -> list[str]:
    return sorted(m for m in names if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_the_resident_tray_loads_no_evaluation_code(tmp_path: Path) -> None:
    """The real ``byod-agent tray`` (offscreen: no tray host, so its window opens after the
    retries; the evaluation runs all the same) after its first real evaluation."""
    state_file, mods_file = tmp_path / "ui-state.json", tmp_path / "modules.json"
    env = _env(tmp_path, BYOD_AGENT_UI_STATE_FILE=str(state_file),
               BYOD_AGENT_DEBUG_MODULES_FILE=str(mods_file))
    app = subprocess.Popen([sys.executable, "-m", "agent", "tray"], cwd=REPO, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def state() -> dict[str, Any] | None:
        try:
            return dict(json.loads(state_file.read_text()))
        except (OSError, ValueError):
            return None

    try:
        final = wait_for(lambda: (s := state()) and s["state"] != "checking" and s, 120,
                         "the first evaluation")
        seen_at = time.monotonic()
        wait_for(lambda: mods_file.exists() and mods_file.stat().st_mtime > time.time() - 0.5
                 and time.monotonic() - seen_at > 1.5, 10, "a fresh module list")
        modules = json.loads(mods_file.read_text())
        alive = app.poll() is None
    finally:
        stop(app)
        log = app.stdout.read().decode(errors="replace") if app.stdout else ""
    assert alive, log[-2000:]
    assert final["state"] in ("blocked", "warning", "compliant", "error")
    assert {r[0] for r in final["rows"]} >= {"os_supported", "disk_encryption"}, final
    assert "ui.tray" in modules and "PySide6.QtWidgets" in modules  # the list is real
    assert heavy_modules(modules) == [], log[-2000:]
