"""Pure decisions of the self-updater: versions, the signed index, when to check, error mapping;
and the session lock (a real second process holds it, then dies)."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tuf.api import exceptions as tuf_errors

from agent.core import i18n
from agent.session import active
from agent.update import model
from agent.update.client import classify
from agent.update.model import Choice, Outcome

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("offered,running,highest,want", [
    ("1.1.0", "1.0.0", None, Choice.TAKE),
    ("1.1", "1.1.0", None, Choice.CURRENT),
    ("1.0.9", "1.1.0", None, Choice.OLDER),
    ("1.2.0", "1.1.0+city3", None, Choice.TAKE),
    ("1.1.0", "1.1.0rc1", None, Choice.CURRENT),  # the release part decides
    ("1.2.0", "1.0.0", "1.3.0", Choice.OLDER),  # below what this PC already had
    ("1.10.0", "1.9.0", "1.9.0", Choice.TAKE),  # numeric, not string order
])
def test_choose(offered: str, running: str, highest: str | None, want: Choice) -> None:
    assert model.choose(offered, running, highest) is want


def test_index_roundtrip_and_refusals() -> None:
    data = model.index_bytes("1.4.0", "byod-agent-1.4.0-linux.tar.gz")
    idx = model.parse_index(data, "linux")
    assert idx.artifact_path("pilot", "linux") == \
        "pilot/linux/1.4.0/byod-agent-1.4.0-linux.tar.gz"
    for bad in (b"{}", b"[]", b"x" * 5000,
                model.index_bytes("1.4.0", "byod-agent.msi"),  # not a Linux artifact
                b'{"format": "byod-update-index/1", "version": "1.4", "artifact": "../x.tar.gz"}',
                b'{"format": "byod-update-index/1", "version": "v1", "artifact": "a.tar.gz"}',
                b'{"format": "byod-update-index/1", "version": "1.4", "artifact": "a.tar.gz",'
                b' "extra": 1}'):
        with pytest.raises(ValueError):
            model.parse_index(bad, "linux")
    with pytest.raises(ValueError):
        model.index_path("beta", "linux")


def test_check_due() -> None:
    assert model.check_due(NOW, None, False, at_start=False)
    assert model.check_due(NOW, NOW, False, at_start=True)
    assert not model.check_due(NOW, NOW - timedelta(hours=5), False, at_start=False)
    assert model.check_due(NOW, NOW - timedelta(hours=6), False, at_start=False)
    assert model.check_due(NOW, NOW - timedelta(hours=1), True, at_start=False)  # retry
    assert model.check_due(NOW, NOW + timedelta(days=2), False, at_start=False)  # clock went back


def test_tuf_errors_map_to_outcomes() -> None:
    assert classify(tuf_errors.ExpiredMetadataError("x")) is Outcome.EXPIRED
    assert classify(tuf_errors.BadVersionNumberError("x")) is Outcome.ROLLBACK
    assert classify(tuf_errors.UnsignedMetadataError("x")) is Outcome.BAD_SIGNATURE
    assert classify(tuf_errors.LengthOrHashMismatchError("x")) is Outcome.TAMPERED
    assert classify(tuf_errors.SlowRetrievalError()) is Outcome.TOO_SLOW  # the deadline cut it
    assert classify(tuf_errors.DownloadHTTPError("x", 500)) is Outcome.UNREACHABLE
    assert classify(tuf_errors.DownloadError("x")) is Outcome.UNREACHABLE
    assert classify(tuf_errors.RepositoryError("x")) is Outcome.REFUSED


def test_every_outcome_has_texts() -> None:
    for lang in i18n.LANGS:
        cat = i18n.catalogue(lang)
        for o in Outcome:
            assert f"update.outcome.{o.value}" in cat and f"update.outcome_short.{o.value}" in cat


def test_session_lock_is_held_by_a_live_process_only(tmp_path: Path) -> None:
    lock = tmp_path / "session.lock"
    assert not active.session_active(lock)
    code = ("import sys, time; from agent.session import active\n"
            "with active.hold(__import__('pathlib').Path(sys.argv[1])) as t:\n"
            "    print(t, flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(lock)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "True"
        assert active.session_active(lock)
        with active.hold(lock) as second:  # a second session in parallel: runs, not taken
            assert not second
    finally:
        proc.kill()  # no clean-up code runs: the kernel releases the lock
        proc.wait(10)
    deadline = time.monotonic() + 5
    while active.session_active(lock) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not active.session_active(lock)


def test_session_state_unreadable_counts_as_a_session(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert active.session_active(tmp_path / "file" / "session.lock")  # parent is not a dir
