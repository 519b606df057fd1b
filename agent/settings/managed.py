"""Settings IT can set and lock: read from the platform's managed location, or embedded in the
installer by ``byod-admin build-config``.

Sources, first wins per key (docs/it-guide.md, "Managed settings"):

1. the platform's managed location, writable only by an administrator or an MDM:
   Windows ``HKLM\\Software\\Policies\\BYOD Agent`` (the ADMX template in installer/windows/admx),
   macOS ``/Library/Managed Preferences/jp.lg.byod-agent.plist`` (a configuration profile, sample in
   installer/macos/byod-agent.mobileconfig), Linux ``/etc/byod-agent/managed.toml``;
2. what the installer set: on Windows the MSI's public properties for silent installs
   (``HKCU\\Software\\BYOD Agent\\Installer\\Managed``), then ``managed.json`` that
   ``byod-admin build-config --managed`` put into the installer's resources (read-only after
   install: the unmanaged majority of staff PCs gets the same locks this way).

A key set by either source is **locked**: the Settings dialog shows it greyed out with who set it,
and ``byod-agent settings set`` refuses it. A value of the wrong type or out of range is ignored
(and logged): a broken managed file must not lock a setting to nonsense, and it must not crash the
agent. Each platform's reader is I/O only; parsing is pure (``parse_toml``, ``parse_plist``,
``from_registry_values``) and tested on recorded or constructed inputs.
"""

from __future__ import annotations

import importlib
import json
import logging
import plistlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from agent.core.paths import resources_dir

log = logging.getLogger("agent.settings")

POLICY_KEY = r"Software\Policies\BYOD Agent"  # under HKEY_LOCAL_MACHINE (the ADMX's)
MSI_KEY = r"Software\BYOD Agent\Installer\Managed"  # under HKEY_CURRENT_USER (MSI properties)
MACOS_DOMAIN = "jp.lg.byod-agent"
MACOS_PATH = Path("/Library/Managed Preferences") / f"{MACOS_DOMAIN}.plist"
LINUX_PATH = Path("/etc/byod-agent/managed.toml")
EMBEDDED_NAME = "managed.json"
MAX_BYTES = 64 * 1024  # a managed file is a handful of keys
CHANNELS = ("pilot", "general")
DIAG_LEVELS = ("standard", "strict")  # agent/diagnostics/export.py LEVELS
LANGUAGES = ("auto", "ja", "en")


class Kind(StrEnum):
    BOOL = "bool"
    CHOICE = "choice"
    URL = "url"


@dataclass(frozen=True)
class Spec:
    kind: Kind
    choices: tuple[str, ...] = ()
    # The Windows registry value name and macOS/Linux key are the same string (the ADMX's
    # valueName): tests/unit/test_managed_settings.py ties the template to this table.


# The keys the agent reads. Names are the registry value names, plist keys and TOML keys.
KEYS: dict[str, Spec] = {
    "StartAtLogin": Spec(Kind.BOOL),
    "UpdateChannel": Spec(Kind.CHOICE, CHANNELS),
    "UpdateURL": Spec(Kind.URL),
    "AutoUpdate": Spec(Kind.BOOL),
    "Language": Spec(Kind.CHOICE, LANGUAGES),
    "VerifierURL": Spec(Kind.URL),
    "PolicyURL": Spec(Kind.URL),
    "DiagnosticLevel": Spec(Kind.CHOICE, DIAG_LEVELS),
}
Value = bool | str


class Source(StrEnum):
    PLATFORM = "platform"  # registry policy / configuration profile / /etc file
    INSTALLER = "installer"  # embedded by byod-admin build-config


_MAX_URL = 2048
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")


def valid_url(text: str) -> bool:
    """An https URL with a host, no credentials, no spaces or control characters."""
    if len(text) > _MAX_URL or any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        return False
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return False
    host = parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc
    return (parts.scheme == "https" and "@" not in parts.netloc and bool(parts.hostname)
            and _HOST.fullmatch(host) is not None)


def coerce(key: str, raw: object) -> Value | None:
    """The value for ``key`` from what a source holds, or None when it is unusable."""
    spec = KEYS.get(key)
    if spec is None:
        return None
    if spec.kind is Kind.BOOL:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int) and raw in (0, 1):  # REG_DWORD from the ADMX enabled/disabled
            return bool(raw)
        if isinstance(raw, str) and raw.strip().lower() in ("1", "0", "true", "false"):
            return raw.strip().lower() in ("1", "true")  # an MSI property is a string
        return None
    if not isinstance(raw, str):
        return None
    value = raw.strip()
    if spec.kind is Kind.CHOICE:
        return value if value in spec.choices else None
    return value if valid_url(value) else None


@dataclass(frozen=True)
class Locked:
    value: Value
    source: Source


@dataclass(frozen=True)
class ManagedSettings:
    """The locked keys; everything else is the user's to choose."""

    locked: Mapping[str, Locked] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()  # keys present but unusable (logged, shown nowhere else)

    def is_locked(self, key: str) -> bool:
        return key in self.locked

    def value(self, key: str) -> Value | None:
        entry = self.locked.get(key)
        return None if entry is None else entry.value

    def get(self, key: str, default: Value) -> Value:
        entry = self.locked.get(key)
        return default if entry is None else entry.value


def _collect(raw: Mapping[str, object], source: Source,
             into: dict[str, Locked], ignored: list[str]) -> None:
    for key, value in raw.items():
        if key in into or value == "":
            continue  # a higher source set it already; "" is an MSI property not given
        good = coerce(key, value)
        if good is None:
            ignored.append(key)
            log.warning("managed setting %r from %s ignored: unknown key or unusable value",
                        key[:40], source.value)
            continue
        into[key] = Locked(good, source)


def merge(platform: Mapping[str, object], installer: Mapping[str, object]) -> ManagedSettings:
    """Platform values first, then the installer's; only valid values lock (pure)."""
    locked: dict[str, Locked] = {}
    ignored: list[str] = []
    _collect(platform, Source.PLATFORM, locked, ignored)
    _collect(installer, Source.INSTALLER, locked, ignored)
    return ManagedSettings(locked, tuple(ignored))


# -- pure parsers ------------------------------------------------------------------------------
def parse_toml(data: bytes) -> dict[str, object]:
    """/etc/byod-agent/managed.toml: top-level ``Key = value`` lines (tables are ignored)."""
    if len(data) > MAX_BYTES:
        raise ValueError("managed.toml too large")
    doc = tomllib.loads(data.decode("utf-8"))
    return {k: v for k, v in doc.items() if not isinstance(v, dict | list)}


def parse_plist(data: bytes) -> dict[str, object]:
    """A managed preferences plist (XML or binary): the top-level dictionary."""
    if len(data) > MAX_BYTES:
        raise ValueError("managed plist too large")
    doc = plistlib.loads(data)
    if not isinstance(doc, dict):
        raise ValueError("managed plist is not a dictionary")
    return {str(k): v for k, v in doc.items() if isinstance(v, bool | int | str)}


def parse_embedded(data: bytes) -> dict[str, object]:
    """resources/managed.json: {"format": "byod-managed/1", "settings": {...}}."""
    if len(data) > MAX_BYTES:
        raise ValueError("managed.json too large")
    doc = json.loads(data.decode("utf-8"))
    if not isinstance(doc, dict) or doc.get("format") != "byod-managed/1" or \
            not isinstance(doc.get("settings"), dict):
        raise ValueError("not a byod-managed/1 document")
    return dict(doc["settings"])


# REG_SZ = 1, REG_EXPAND_SZ = 2, REG_DWORD = 4 (winreg constants, fixed by the Win32 API)
REG_SZ, REG_EXPAND_SZ, REG_DWORD = 1, 2, 4


def from_registry_values(values: Mapping[str, tuple[object, int]]) -> dict[str, object]:
    """Registry value name -> (data, type) as winreg.EnumValue gives them; strings and DWORDs."""
    out: dict[str, object] = {}
    for name, (data, kind) in values.items():
        text = kind in (REG_SZ, REG_EXPAND_SZ) and isinstance(data, str)
        if text or (kind == REG_DWORD and isinstance(data, int)):
            out[name] = data
    return out


# -- I/O ---------------------------------------------------------------------------------------
class RegistryReader(Protocol):
    """Every value under one key of a hive ("HKLM" or "HKCU"); ``WinregReader`` in production,
    a dict in tests."""

    def values(self, hive: str, key: str) -> Mapping[str, tuple[object, int]]: ...


class WinregReader:
    MAX_VALUES = 256

    def __init__(self) -> None:
        self._winreg = importlib.import_module("winreg")

    def values(self, hive: str, key: str) -> Mapping[str, tuple[object, int]]:
        w = self._winreg
        out: dict[str, tuple[object, int]] = {}
        root = w.HKEY_LOCAL_MACHINE if hive == "HKLM" else w.HKEY_CURRENT_USER
        try:
            handle = w.OpenKey(root, key, 0, w.KEY_READ | w.KEY_WOW64_64KEY)
        except OSError:
            return out  # no policy key: nothing is managed
        with handle:
            for i in range(self.MAX_VALUES):
                try:
                    name, data, kind = w.EnumValue(handle, i)
                except OSError:
                    break
                out[str(name)] = (data, int(kind))
        return out


def _read_file(path: Path) -> bytes | None:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    if len(data) > MAX_BYTES:
        raise ValueError(f"{path}: larger than {MAX_BYTES} bytes")
    return data


def read_platform(os_name: str, *, registry: RegistryReader | None = None,
                  path: Path | None = None) -> dict[str, object]:
    """The platform source for ``os_name`` (windows|macos|linux); {} when nothing is managed or
    the source cannot be read (logged: an unreadable file locks nothing)."""
    try:
        if os_name == "windows":
            reader = registry or WinregReader()
            return from_registry_values(reader.values("HKLM", POLICY_KEY))
        if os_name == "macos":
            data = _read_file(path or MACOS_PATH)
            return {} if data is None else parse_plist(data)
        data = _read_file(path or LINUX_PATH)
        return {} if data is None else parse_toml(data)
    except (OSError, ValueError) as exc:  # tomllib/plistlib errors are ValueErrors
        log.warning("managed settings (%s) unreadable: %s", os_name, exc)
        return {}


def read_embedded(directory: Path | None = None) -> dict[str, object]:
    data = None
    try:
        data = _read_file((directory or resources_dir()) / EMBEDDED_NAME)
        return {} if data is None else parse_embedded(data)
    except (OSError, ValueError) as exc:
        log.warning("embedded managed settings unreadable: %s", exc)
        return {}


def read_msi(registry: RegistryReader | None = None) -> dict[str, object]:
    """Windows: the values the MSI's public properties wrote (HKCU, per-user install)."""
    try:
        return from_registry_values((registry or WinregReader()).values("HKCU", MSI_KEY))
    except (OSError, ValueError) as exc:
        log.warning("MSI managed settings unreadable: %s", exc)
        return {}


def load(os_name: str, *, registry: RegistryReader | None = None, path: Path | None = None,
         resources: Path | None = None) -> ManagedSettings:
    """Platform first; then what the installer set (the MSI's properties over managed.json)."""
    installer = read_embedded(resources)
    if os_name == "windows":
        installer = {**installer, **{k: v for k, v in read_msi(registry).items() if v != ""}}
    return merge(read_platform(os_name, registry=registry, path=path), installer)
