"""Per-user rotating JSON-lines log that the help desk can read from a bundle.

Every record passes through the redactor's secret scrubbing before it is written (defence in
depth: code must not log secrets in the first place), carries the correlation ID when one is set,
and rotation bounds the disk use (5 files x 1 MiB). The file is opened without following links
(agent.core.nofollow): a log file or log directory swapped for a symlink is never appended to, and
``log_files`` lists only regular files of a real directory, never a FIFO or a link.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.core import nofollow
from agent.core.paths import log_dir
from agent.core.scrub import scrub_secrets

LOG_NAME = "agent.log"
MAX_BYTES = 1024 * 1024
BACKUPS = 4
_correlation = threading.local()
_LOG_FILE = re.compile(re.escape(LOG_NAME) + r"(?:\.[0-9]{1,3})?")
log = logging.getLogger("agent.core.logsetup")


class NoFollowRotatingHandler(logging.handlers.RotatingFileHandler):
    """RotatingFileHandler whose file is opened with O_NOFOLLOW and checked to be regular."""

    def _open(self) -> Any:
        return nofollow.open_append(Path(self.baseFilename), self.encoding or "utf-8")


def set_correlation_id(value: str | None) -> None:
    _correlation.value = value


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub_secrets(record.getMessage()),
        }
        cid = getattr(_correlation, "value", None)
        if cid:
            entry["correlation_id"] = cid
        if record.exc_info:
            entry["exception"] = scrub_secrets(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup(directory: Path | None = None, level: int = logging.INFO) -> Path:
    """Attach the rotating file handler to the ``agent`` and ``ui`` loggers (idempotent)."""
    # A log that cannot be written (disk full, file gone) must never print logging's own
    # "--- Logging error ---" traceback on a person's terminal.
    logging.raiseExceptions = False
    directory = directory or log_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / LOG_NAME
    for name in ("agent", "ui"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if any(getattr(h, "baseFilename", None) == str(path) for h in logger.handlers):
            continue
        try:
            nofollow.check_directory(directory)
            handler = NoFollowRotatingHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                              encoding="utf-8")
        except OSError as exc:  # a planted link or special file: no file log, never through it
            logging.getLogger("agent").warning("file log disabled: %s", type(exc).__name__)
            continue
        handler.setFormatter(JsonLineFormatter())
        logger.addHandler(handler)
    for noisy in ("urllib3", "keyring", "asyncio"):  # third parties stay quiet
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path


def log_files(directory: Path | None = None) -> list[Path]:
    """The agent's own log files: regular files named agent.log[.N] in a real directory."""
    directory = directory or log_dir()
    try:
        nofollow.check_directory(directory)
        with os.scandir(directory) as entries:
            found = [Path(e.path) for e in entries
                     if _LOG_FILE.fullmatch(e.name) and e.is_file(follow_symlinks=False)
                     and e.stat(follow_symlinks=False).st_nlink == 1]
    except OSError:
        return []
    return sorted(found)
