"""Per-user rotating JSON-lines log that the help desk can read from a bundle.

Every record passes through the redactor's secret scrubbing before it is written (defence in
depth: code must not log secrets in the first place), carries the correlation ID when one is set,
and rotation bounds the disk use (5 files x 1 MiB).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import threading
from datetime import UTC, datetime
from pathlib import Path

from agent.core.paths import log_dir
from agent.core.scrub import scrub_secrets

LOG_NAME = "agent.log"
MAX_BYTES = 1024 * 1024
BACKUPS = 4
_correlation = threading.local()


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
    directory = directory or log_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOG_NAME
    for name in ("agent", "ui"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if any(getattr(h, "baseFilename", None) == str(path) for h in logger.handlers):
            continue
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES,
                                                       backupCount=BACKUPS, encoding="utf-8")
        handler.setFormatter(JsonLineFormatter())
        logger.addHandler(handler)
    for noisy in ("urllib3", "keyring", "asyncio"):  # third parties stay quiet
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path


def log_files(directory: Path | None = None) -> list[Path]:
    directory = directory or log_dir()
    return sorted(directory.glob(LOG_NAME + "*")) if directory.is_dir() else []
