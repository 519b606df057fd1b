"""What the self-updater remembers per user: last check, its outcome, the highest version it ever
installed (a floor against rollback), in ``<state dir>/update/status.json``. The About dialog and
``byod-agent update status`` read it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from agent.core.fsutil import atomic_write
from agent.core.paths import state_dir
from agent.update.model import Outcome, version_key

MAX_BYTES = 16 * 1024


@dataclass
class Status:
    last_check: str | None = None  # ISO 8601, UTC
    outcome: str | None = None  # an Outcome value
    channel: str | None = None
    offered: str | None = None  # the version the channel offered at the last check
    highest_installed: str | None = None

    def last_check_time(self) -> datetime | None:
        if not self.last_check:
            return None
        try:
            return datetime.fromisoformat(self.last_check)
        except ValueError:
            return None

    @property
    def failed(self) -> bool:
        from agent.update.model import FAILURES  # noqa: PLC0415

        return self.outcome in {o.value for o in FAILURES}


def update_dir(base: Path | None = None) -> Path:
    return (base or state_dir()) / "update"


def status_path(base: Path | None = None) -> Path:
    return update_dir(base) / "status.json"


def load(path: Path) -> Status:
    try:
        with path.open("rb") as fh:
            doc = json.loads(fh.read(MAX_BYTES))
    except (OSError, ValueError):
        return Status()
    if not isinstance(doc, dict):
        return Status()
    out = Status()
    for name in ("last_check", "outcome", "channel", "offered", "highest_installed"):
        value = doc.get(name)
        if isinstance(value, str) and len(value) <= 64:
            setattr(out, name, value)
    if out.highest_installed is not None:
        try:
            version_key(out.highest_installed)
        except ValueError:
            out.highest_installed = None
    if out.outcome is not None and out.outcome not in {o.value for o in Outcome}:
        out.outcome = None
    return out


def save(path: Path, status: Status) -> None:
    atomic_write(path, (json.dumps(asdict(status), indent=2) + "\n").encode("utf-8"), mode=0o600)


def about_lines(lang: str, *, channel: str, status: Status) -> list[str]:
    """What the About dialog says about updates: the channel and when the last check ran."""
    from agent.core import i18n  # noqa: PLC0415

    lines = [i18n.text("ui.about.update_channel", lang, channel=channel)]
    when = status.last_check_time()
    if when is None or status.outcome is None:
        lines.append(i18n.text("ui.about.update_never", lang))
    else:
        from agent.policy.schema import JST  # noqa: PLC0415

        shown = when.astimezone(JST).strftime("%Y-%m-%d %H:%M JST")
        lines.append(i18n.text("ui.about.update_last", lang, at=shown,
                               outcome=i18n.text(f"update.outcome_short.{status.outcome}", lang)))
    return lines
