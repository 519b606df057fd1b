"""Pure decisions of the self-updater: target names, the channel index, which version to take,
when to check, and the reasons a check ends (each a translatable message).

Repository layout (written by ``byod-admin update-repo``, docs/it-guide.md "Updates")::

    <channel>/<os>/latest.json               the index: {"format": "byod-update-index/1",
                                              "version": "1.4.0", "artifact": "<name>"}
    <channel>/<os>/<version>/<artifact>      the installer or archive
    <channel>/<os>/<version>/SHA256SUMS      the release list ``byod-admin release sign`` wrote
    <channel>/<os>/<version>/SHA256SUMS.sig  and its Ed25519 signature (the release key)

Every one of them is a TUF target, so TUF decides whether the bytes are the ones the targets role
signed, in a consistent snapshot that is not expired and not older than one seen before; then the
release signature is checked with the release key shipped in the installer; then the version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from agent.core.messages import Message, msg

CHANNELS = ("pilot", "general")
OSES = ("windows", "macos", "linux")
INDEX_FORMAT = "byod-update-index/1"
MAX_INDEX_BYTES = 4096
CHECK_EVERY = timedelta(hours=6)
RETRY_AFTER_FAILURE = timedelta(hours=1)
_VERSION = re.compile(r"\d{1,6}(?:\.\d{1,6}){0,3}")
_ARTIFACT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
ARCHIVE_SUFFIXES = (".tar.gz",)
FORMATS = {"linux": (".tar.gz",), "windows": (".msi",), "macos": (".pkg",)}


class Outcome(StrEnum):
    INSTALLED = "installed"
    UP_TO_DATE = "up_to_date"
    DEFERRED_SESSION = "deferred_session"  # a remote session runs: nothing starts
    NOT_CONFIGURED = "not_configured"  # no update URL or no shipped root.json
    DISABLED = "disabled"  # IT switched automatic updates off
    PACKAGE_MANAGED = "package_managed"  # installed by the system package manager (Linux .deb)
    NO_RELEASE = "no_release"  # the channel has nothing for this OS
    UNREACHABLE = "unreachable"
    TOO_SLOW = "too_slow"  # a download passed its wall-clock deadline (e.g. a trickling server)
    EXPIRED = "expired"  # freeze attack or a repository nobody re-signed
    ROLLBACK = "rollback"  # older metadata than seen before, or an older version offered
    BAD_SIGNATURE = "bad_signature"  # metadata or release list not signed by a trusted key
    TAMPERED = "tampered"  # bytes differ from what was signed
    REFUSED = "refused"  # any other verification failure
    INSTALL_FAILED = "install_failed"  # verified, but the install step failed: old version runs
    UNSUPPORTED = "unsupported"  # no per-user install for this OS's package format here


FAILURES = frozenset({Outcome.UNREACHABLE, Outcome.TOO_SLOW, Outcome.EXPIRED, Outcome.ROLLBACK,
                      Outcome.BAD_SIGNATURE, Outcome.TAMPERED, Outcome.REFUSED,
                      Outcome.INSTALL_FAILED, Outcome.UNSUPPORTED})


def outcome_message(outcome: Outcome, **params: str | int) -> Message:
    return msg(f"update.outcome.{outcome.value}", **params)


def version_key(version: str) -> tuple[int, ...]:
    """'1.4' -> (1, 4, 0, 0): comparable; ValueError for anything but a dotted release."""
    if _VERSION.fullmatch(version) is None:
        raise ValueError(f"not a release version: {version[:40]!r}")
    parts = tuple(int(p) for p in version.split("."))
    return parts + (0,) * (4 - len(parts))


def release_part(version: str) -> str:
    """'0.1.0+city3' or '1.2.0rc1' -> the dotted release in front."""
    m = re.match(r"\d{1,6}(?:\.\d{1,6}){0,3}", version.strip())
    if m is None:
        raise ValueError(f"not a version: {version[:40]!r}")
    return m.group(0)


def index_path(channel: str, os_name: str) -> str:
    if channel not in CHANNELS or os_name not in OSES:
        raise ValueError(f"unknown channel or OS: {channel}/{os_name}")
    return f"{channel}/{os_name}/latest.json"


def release_dir(channel: str, os_name: str, version: str) -> str:
    version_key(version)
    return f"{channel}/{os_name}/{version}"


@dataclass(frozen=True)
class Index:
    version: str
    artifact: str  # a bare file name inside release_dir()

    def artifact_path(self, channel: str, os_name: str) -> str:
        return f"{release_dir(channel, os_name, self.version)}/{self.artifact}"


def parse_index(data: bytes, os_name: str) -> Index:
    """latest.json, bounded and strict: ValueError on anything unexpected."""
    if len(data) > MAX_INDEX_BYTES:
        raise ValueError("index too large")
    doc = json.loads(data.decode("utf-8"))
    if not isinstance(doc, dict) or set(doc) != {"format", "version", "artifact"} or \
            doc["format"] != INDEX_FORMAT:
        raise ValueError("not a byod-update-index/1 document")
    version, artifact = doc["version"], doc["artifact"]
    if not isinstance(version, str) or not isinstance(artifact, str):
        raise ValueError("index fields must be strings")
    version_key(version)
    if _ARTIFACT.fullmatch(artifact) is None or ".." in artifact:
        raise ValueError(f"unusable artifact name {artifact[:60]!r}")
    if not artifact.endswith(FORMATS[os_name]):
        raise ValueError(f"{artifact}: not a {'/'.join(FORMATS[os_name])} for {os_name}")
    return Index(version, artifact)


def index_bytes(version: str, artifact: str) -> bytes:
    version_key(version)
    doc = {"format": INDEX_FORMAT, "version": version, "artifact": artifact}
    return (json.dumps(doc, sort_keys=True) + "\n").encode("utf-8")


class Choice(StrEnum):
    TAKE = "take"
    CURRENT = "current"  # the offered version is the running one
    OLDER = "older"  # offered version below the running one or below one installed before


def choose(offered: str, running: str, highest_installed: str | None) -> Choice:
    """Take only a version newer than the running one and never below the highest ever installed
    (a repository that signs an old, vulnerable release again is a rollback)."""
    want = version_key(offered)
    have = version_key(release_part(running))
    if highest_installed is not None and want < version_key(highest_installed):
        return Choice.OLDER
    if want == have:
        return Choice.CURRENT
    return Choice.TAKE if want > have else Choice.OLDER


def check_due(now: datetime, last_check: datetime | None, last_failed: bool, *,
              at_start: bool) -> bool:
    """At start, then every CHECK_EVERY; an hour after a failure. A clock that went back
    (last check in the future) checks now rather than wait."""
    if at_start or last_check is None or last_check > now:
        return True
    wait = RETRY_AFTER_FAILURE if last_failed else CHECK_EVERY
    return now - last_check >= wait
