"""The pseudonym mapping of each bundle, kept on this PC only, encrypted, deleted after retention.

When the help desk asks "what was host-2?", the *user* looks it up (``byod-agent diag mapping
ID``); the help desk never receives the mapping. One file per bundle in
``data_dir()/diag-mappings/<ID>-<UTC stamp>.age``.

Encryption: age (X25519 + ChaCha20-Poly1305, through pyrage, the library the bundle encryption
already uses) to a per-device age identity that lives in the OS keystore. The identity is a
74-character string, far below Credential Manager's 2560-byte limit; the keystore holds nothing
else, so the files on disk are useless without the logged-in user's keyring. age rather than a
hand-assembled AES construction: one well-specified authenticated format, one dependency, and IT
can still decrypt a file with the stock ``age -d`` if a keyring ever has to be exported. As for the
device key, plaintext keyring backends are refused (agent/keystore/backends.py).

Retention: ``RETENTION_DAYS`` (30). The signed policy has no field for it (the policy schema is not
changed for this), so it is a constant, stated in the consent text and docs/diagnostics.md.
The purge keys on the time in the file name (written by us), falling back to the file's mtime
for anything else in the directory, and runs on each export and at tray start.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyrage

from agent.core import paths
from agent.core.errors import AgentError
from agent.core.fsutil import atomic_write
from agent.core.messages import Message, msg
from agent.keystore import backends
from agent.keystore.errors import KeyState, KeystoreError

log = logging.getLogger("agent.diagnostics")

RETENTION_DAYS = 30
DIR_NAME = "diag-mappings"
SERVICE = "byod-agent"
IDENTITY_NAME = "diag-mapping-identity"
_ID = re.compile(r"\A[0-9A-HJKMNP-TV-Z]{4}-?[0-9A-HJKMNP-TV-Z]{4}\Z")  # \Z: no trailing \n
_FILE = re.compile(r"\A(?P<id>[0-9A-Z]{8})-(?P<stamp>\d{8}T\d{6}Z)\.age\Z")
_STAMP = "%Y%m%dT%H%M%SZ"


class MappingError(AgentError):
    """Why a mapping cannot be stored or read; ``key`` is a catalogue key for the user."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(Message(key, {k: v if isinstance(v, int | float) else str(v)
                                       for k, v in params.items()}), f"{key} {params}")
        self.key = key
        self.params = params


@dataclass(frozen=True)
class Revealed:
    bundle_id: str
    created_at: datetime
    expires_at: datetime
    entries: dict[str, str]  # pseudonym -> original


def normalize_id(text: str) -> str:
    """``k7qm-4txd``, ``K7QM4TXD`` -> ``K7QM4TXD``; MappingError when it is not a bundle ID."""
    value = text.strip().upper()
    if not _ID.match(value):
        raise MappingError("diag.mapping.bad_id", bundle_id=text[:40])
    return value.replace("-", "")


def reverse(redactor_mapping: Mapping[str, str]) -> dict[str, str]:
    """The redactor's ``kind:original -> pseudonym`` turned into ``pseudonym -> original``."""
    return {pseudo: key.split(":", 1)[1] for key, pseudo in redactor_mapping.items()}


class MappingStore:
    def __init__(self, directory: Path | None = None, backend: Any = None,
                 retention: timedelta = timedelta(days=RETENTION_DAYS)) -> None:
        self.directory = directory or paths.data_dir() / DIR_NAME
        self._raw_backend = backend
        self.retention = retention

    # -- the device identity in the OS keystore -------------------------------------------
    def _backend(self) -> backends.Backend:
        raw = self._raw_backend if self._raw_backend is not None else backends.default_backend()
        return backends.choose(raw)  # refuses plaintext/null/fail keyrings

    def _identity(self, create: bool) -> pyrage.x25519.Identity:
        backend = self._backend()
        text = backends.call(lambda: backend.get_password(SERVICE, IDENTITY_NAME))
        if text:
            try:
                return pyrage.x25519.Identity.from_str(text)
            except Exception:  # pyrage's own error type: a damaged entry
                if not create:
                    raise KeystoreError(KeyState.KEY_CORRUPT,
                                        msg("cert.error.key_corrupt")) from None
        if not create:
            raise MappingError("diag.mapping.no_identity")
        fresh = pyrage.x25519.Identity.generate()
        backends.call(lambda: backend.set_password(SERVICE, IDENTITY_NAME, str(fresh)))
        return fresh

    # -- storing, reading, purging ----------------------------------------------------------
    def store(self, bundle_id: str, created_at: datetime, entries: Mapping[str, str]) -> Path:
        """Encrypt and write one bundle's mapping. Raises KeystoreError/MappingError/OSError."""
        ident = self._identity(create=True)
        created = created_at.astimezone(UTC).replace(microsecond=0)
        doc = {"bundle_id": normalize_id(bundle_id), "created_at": created.isoformat(),
               "expires_at": (created + self.retention).isoformat(), "entries": dict(entries)}
        sealed = pyrage.encrypt(json.dumps(doc, ensure_ascii=False).encode("utf-8"),
                                [ident.to_public()])
        path = self.directory / f"{doc['bundle_id']}-{created.strftime(_STAMP)}.age"
        self.directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            self.directory.chmod(0o700)
        atomic_write(path, bytes(sealed))
        return path

    def reveal(self, bundle_id: str, now: datetime | None = None) -> Revealed:
        wanted = normalize_id(bundle_id)
        self.purge(now)  # an expired mapping is gone, not merely hidden
        found = sorted(p for p in self._files() if _FILE.match(p.name)
                       and p.name.startswith(wanted + "-"))
        if not found:
            raise MappingError("diag.mapping.not_found", bundle_id=bundle_id,
                               days=self.retention.days)
        ident = self._identity(create=False)
        try:
            plain = pyrage.decrypt(found[-1].read_bytes(), [ident])
            doc = json.loads(bytes(plain).decode("utf-8"))
            return Revealed(str(doc["bundle_id"]), datetime.fromisoformat(doc["created_at"]),
                            datetime.fromisoformat(doc["expires_at"]),
                            {str(k): str(v) for k, v in dict(doc["entries"]).items()})
        except OSError as exc:
            raise MappingError("diag.mapping.unreadable", detail=exc.strerror or "") from exc
        except Exception as exc:  # pyrage's decrypt error, damaged JSON: not usable
            raise MappingError("diag.mapping.unreadable", detail=type(exc).__name__) from exc

    def _files(self) -> list[Path]:
        try:
            return [p for p in self.directory.iterdir() if p.is_file() or p.is_symlink()]
        except OSError:
            return []

    def purge(self, now: datetime | None = None) -> list[Path]:
        """Delete every mapping older than the retention period; never raises."""
        now = now or datetime.now(UTC)
        removed = []
        for path in self._files():
            m = _FILE.match(path.name)
            try:
                if m:
                    born = datetime.strptime(m["stamp"], _STAMP).replace(tzinfo=UTC)
                else:  # a leftover temp file or anything else: its own age decides
                    born = datetime.fromtimestamp(path.lstat().st_mtime, UTC)
                if now - born > self.retention:
                    path.unlink()
                    removed.append(path)
            except (OSError, ValueError) as exc:
                log.warning("could not purge %s: %s", path.name, type(exc).__name__)
        if removed:
            log.info("purged %d expired diagnostic mapping(s)", len(removed))
        return removed


def purge_expired(directory: Path | None = None) -> int:
    """For the tray's start-up: delete expired mappings, report how many; never raises."""
    try:
        return len(MappingStore(directory).purge())
    except Exception:  # start-up must not fail because of housekeeping
        log.exception("diagnostic mapping purge failed")
        return 0
