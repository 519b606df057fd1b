"""The tray's own preferences (language override, which certificate-expiry notices were shown,
whether the first-run window was shown), in one small JSON file per user.

Start at login is not stored here: the OS entry itself (Run key, LaunchAgent, .desktop) is the
truth, read back through agent.settings.autostart.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import platformdirs

from agent.core.i18n import LANGS
from agent.core.paths import APP_AUTHOR, APP_NAME


@dataclass
class Prefs:
    language: str = "auto"  # "auto" follows the OS; else one of agent.core.i18n.LANGS
    # certificate-expiry threshold ("30", "7", "1", "0") -> ISO date it was last notified
    cert_notified: dict[str, str] = field(default_factory=dict)
    last_user: str = ""  # the office PC user name for FreeRDP (never the password)
    first_run_shown: bool = False  # the first-run window (ui/first_run.py) was shown once


def default_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, APP_AUTHOR)) / "ui.json"


def load(path: Path) -> Prefs:
    """A missing or damaged file gives the defaults: preferences are never worth a crash."""
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            return Prefs()
        lang = data.get("language")
        sent = data.get("cert_notified")
        notified = {str(k): str(v) for k, v in sent.items()} if isinstance(sent, dict) else {}
        user = data.get("last_user")
        return Prefs(language=str(lang) if lang == "auto" or lang in LANGS else "auto",
                     cert_notified=notified,
                     last_user=user if isinstance(user, str) and len(user) <= 104 else "",
                     first_run_shown=data.get("first_run_shown") is True)
    return Prefs()


def save(path: Path, prefs: Prefs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(prefs)), encoding="utf-8")
    tmp.replace(path)
