"""The tray's scheduled update check runs ``byod-agent update check`` as a real child process
(here: nothing configured, so it records ``not_configured``) and does not run again before due."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from ui.update_task import UpdateScheduler


def test_scheduled_check_runs_the_cli_and_records_it(qtbot: QtBot, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for var, sub in (("HOME", "home"), ("XDG_STATE_HOME", "state"), ("XDG_CONFIG_HOME", "cfg"),
                     ("XDG_DATA_HOME", "data"), ("TMPDIR", "tmp")):
        (tmp_path / sub).mkdir()
        monkeypatch.setenv(var, str(tmp_path / sub))  # the child process inherits them
    sched = UpdateScheduler()
    sched.start()
    assert sched._proc is not None
    assert sched._proc.waitForFinished(60_000)
    status = tmp_path / "state" / "byod-agent" / "update" / "status.json"
    doc = json.loads(status.read_text())
    assert doc["outcome"] == "not_configured" and doc["last_check"]
    first = sched._proc
    sched._maybe_run(at_start=False)  # just checked: not due
    assert sched._proc is first
    sched.stop()
