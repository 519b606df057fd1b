"""Issue 18 class 3: the export takes only regular files the agent wrote, never through a link,
never blocking on a FIFO; the log writer never appends through a link.

Each case failed before issue 18: a symlinked agent.log put /etc/passwd (or a private file) into
the bundle, a FIFO named agent.log.2 hung the export (and the tray) forever, a symlinked log
directory was followed, and the log writer appended to whatever agent.log pointed at.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.core import logsetup, nofollow
from agent.diagnostics import bundle
from agent.diagnostics.redact import Redactor
from agent.posture.model import HostInfo, Report

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX links and FIFOs")


def _report() -> Report:
    return Report("2026-12-01T00:00:00Z", HostInfo("linux", "x", "pc01", "x86_64"), ())


def _prepare(paths: list[Path]) -> bundle.Preview:
    return bundle.prepare(_report(), Redactor(), log_files=paths,
                          facts=lambda: {"python": "3.11"})


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    d = tmp_path / "logs"
    d.mkdir()
    (d / "agent.log").write_text('{"message": "the real log"}\n', encoding="utf-8")
    return d


def test_links_fifos_and_hard_links_are_not_collected(logdir: Path, tmp_path: Path) -> None:
    private = tmp_path / "private.txt"
    private.write_text("PRIVATE-CONTENT\n", encoding="utf-8")
    os.symlink("/etc/passwd", logdir / "agent.log.1")
    os.symlink(private, logdir / "agent.log.2")
    os.mkfifo(logdir / "agent.log.3")
    os.link(private, logdir / "agent.log.4")
    files = logsetup.log_files(logdir)
    assert [p.name for p in files] == ["agent.log"]
    # Even when handed the paths directly (a race after listing), none is read.
    everything = [logdir / n for n in ("agent.log", "agent.log.1", "agent.log.2", "agent.log.3",
                                       "agent.log.4")]
    done: list[bundle.Preview] = []
    worker = threading.Thread(target=lambda: done.append(_prepare(everything)), daemon=True)
    worker.start()
    worker.join(10)  # before issue 18 this never returned (the FIFO blocks open())
    assert done, "the export blocked on a FIFO"
    logs = {n: d for n, d in done[0].files.items() if n.startswith("logs/")}
    assert list(logs) == ["logs/agent.log"]
    blob = b"".join(logs.values())
    assert b"root:" not in blob and b"PRIVATE-CONTENT" not in blob


def test_a_symlinked_log_directory_is_not_followed(tmp_path: Path, logdir: Path) -> None:
    link = tmp_path / "linked-logs"
    os.symlink(logdir, link)
    assert logsetup.log_files(link) == []
    with pytest.raises(OSError):
        nofollow.read_tail(link / "agent.log", 1024)


def test_read_tail_refuses_devices_and_directories(tmp_path: Path) -> None:
    for path in (Path("/dev/zero"), tmp_path):
        with pytest.raises(OSError):
            nofollow.read_tail(path, 16)


@pytest.fixture
def clean_loggers() -> Iterator[None]:
    before = {n: list(logging.getLogger(n).handlers) for n in ("agent", "ui")}
    yield
    for name, handlers in before.items():
        logger = logging.getLogger(name)
        for h in list(logger.handlers):
            if h not in handlers:
                logger.removeHandler(h)
                h.close()


@pytest.mark.usefixtures("clean_loggers")
def test_the_log_writer_never_appends_through_a_link(tmp_path: Path) -> None:
    target = tmp_path / "victim.txt"
    target.write_text("untouched\n", encoding="utf-8")
    d = tmp_path / "logs"
    d.mkdir()
    os.symlink(target, d / "agent.log")
    logsetup.setup(d)
    logging.getLogger("agent.test").warning("planted line")
    assert target.read_text(encoding="utf-8") == "untouched\n"
    # A symlinked log directory is refused too.
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "linkdir")
    logsetup.setup(tmp_path / "linkdir")
    logging.getLogger("agent.test").warning("second line")
    assert list(real.iterdir()) == []


@pytest.mark.usefixtures("clean_loggers")
def test_the_log_writer_still_writes_a_regular_file(tmp_path: Path) -> None:
    d = tmp_path / "logs"
    path = logsetup.setup(d)
    logging.getLogger("agent.test").warning("hello")
    for h in logging.getLogger("agent").handlers:
        h.flush()
    assert "hello" in path.read_text(encoding="utf-8")
    assert (path.stat().st_mode & 0o777) == 0o600
