"""A check's result word (pass, warn, fail, unknown), shared by the posture engine and the views.

It lives in the ground floor so the tray can read a ``StatusView`` off the wire without importing
the posture engine (docs/tray.md "The evaluation worker"); ``agent.posture.model`` re-exports it.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 (a status, not a password)
    WARN = "warn"
    FAIL = "fail"
    UNKNOWN = "unknown"
