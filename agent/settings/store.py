"""The user's own choices for the managed keys, and the one place that refuses a locked one.

``settings.json`` in the per-user config directory holds only what the user set; the effective
value is the managed (locked) value when there is one, else the user's, else the default. The CLI
(``byod-agent settings``) and the tray both change settings through ``set_value``, so a locked key
cannot be changed from either: ``SettingLocked`` says who locked it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import platformdirs

from agent.core.errors import AgentError
from agent.core.fsutil import atomic_write
from agent.core.messages import msg
from agent.core.paths import APP_AUTHOR, APP_NAME
from agent.settings.managed import KEYS, Kind, ManagedSettings, Value, coerce

DEFAULTS: dict[str, Value] = {
    "StartAtLogin": True,
    "UpdateChannel": "general",
    "UpdateURL": "",
    "AutoUpdate": True,
    "Language": "auto",
    "VerifierURL": "",
    "PolicyURL": "",
    "DiagnosticLevel": "standard",
}
MAX_BYTES = 64 * 1024


class SettingLocked(AgentError):
    def __init__(self, key: str, source: str) -> None:
        kind = "installer" if source == "installer" else "platform"
        super().__init__(msg(f"settings.locked.{kind}", setting=key),
                         f"{key} is locked by {source}")
        self.key = key


class SettingInvalid(AgentError):
    def __init__(self, key: str, value: str) -> None:
        super().__init__(msg("settings.invalid", setting=key, value=value[:80]),
                         f"{key}: unusable value")


def default_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, APP_AUTHOR)) / "settings.json"


def load_user(path: Path) -> dict[str, Value]:
    """What the user set; a damaged file counts as nothing set."""
    try:
        with path.open("rb") as fh:
            doc = json.loads(fh.read(MAX_BYTES))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict):
        return {}
    out: dict[str, Value] = {}
    for key, raw in doc.items():
        good = coerce(str(key), raw)
        if good is not None:
            out[str(key)] = good
    return out


def effective(managed: ManagedSettings, user: Mapping[str, Value]) -> dict[str, Value]:
    return {k: managed.get(k, user.get(k, DEFAULTS[k])) for k in KEYS}


def parse_cli_value(key: str, text: str) -> Value:
    spec = KEYS.get(key)
    if spec is None:
        raise SettingInvalid(key, text)
    raw: object = text
    if spec.kind is Kind.BOOL:
        low = text.strip().lower()
        raw = True if low in ("1", "true", "on", "yes") else False if low in (
            "0", "false", "off", "no") else None
    good = coerce(key, raw)
    if good is None:
        raise SettingInvalid(key, text)
    return good


def set_value(path: Path, managed: ManagedSettings, key: str, value: Value) -> None:
    """Store the user's choice, unless IT locked the key (SettingLocked)."""
    entry = managed.locked.get(key)
    if entry is not None:
        raise SettingLocked(key, entry.source.value)
    if coerce(key, value) is None:
        raise SettingInvalid(key, str(value))
    user = load_user(path)
    user[key] = value
    atomic_write(path, (json.dumps(user, indent=2) + "\n").encode("utf-8"), mode=0o600)


def current(os_name: str, path: Path | None = None) -> tuple[ManagedSettings, dict[str, Value]]:
    """(what IT locked, the effective value of every key) on this PC, for this user."""
    from agent.settings import managed as managed_mod  # noqa: PLC0415

    locked = managed_mod.load(os_name)
    return locked, effective(locked, load_user(path or default_path()))
