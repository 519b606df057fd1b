"""Build a diagnostic bundle: allow-listed, redacted files, a manifest of hashes, an optional
device signature and optional encryption to the help desk.

Only what is listed here is ever collected: never keys, keyring items, passwords, tokens, the
clipboard, documents, the environment or raw command lines. The user sees the exact redacted files
(``Preview``) before anything is written.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import platform
import secrets
import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import psutil
import pyrage

from agent import __version__
from agent.core import i18n, nofollow
from agent.core.errors import AgentError
from agent.core.fsutil import atomic_write
from agent.core.messages import msg
from agent.diagnostics.redact import Redactor
from agent.posture.model import Report
from agent.presentation.report import report_to_json

BUNDLE_SCHEMA = 1
DEFAULT_CAP_BYTES = 20 * 1024 * 1024
LOG_TAIL_BYTES = 2 * 1024 * 1024  # per log file, newest part
LOG_READ_BUDGET_S = 10.0  # all log files together
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
SIGNER_CERT = "signer.pem"
# Crockford base32 without I, L, O, U: easy to read over the phone.
_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class Signer(Protocol):
    """The device key (from the keystore) signs the manifest."""

    def sign(self, data: bytes) -> bytes: ...

    def certificate_pem(self) -> bytes: ...


class BundleError(AgentError):
    """The bundle could not be built or written (exit 2); the detail names why."""

    def __init__(self, detail: str) -> None:
        super().__init__(msg("diag.error.build", detail=detail[:300]), detail)


def new_bundle_id() -> str:
    raw = secrets.randbits(40)
    chars = "".join(_ID_ALPHABET[(raw >> (5 * i)) & 31] for i in range(8))
    return f"{chars[:4]}-{chars[4:]}"


@dataclass
class Preview:
    """Exactly what would be written, already redacted, for the user to see and agree to."""

    bundle_id: str
    created_at: str
    level: str
    ticket: str | None
    files: dict[str, bytes]
    replaced: dict[str, int] = field(default_factory=dict)  # pseudonym kind -> count

    @property
    def total_bytes(self) -> int:
        return sum(len(b) for b in self.files.values())


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False).encode("utf-8") + b"\n"


def summary_text(report_json: Mapping[str, Any], bundle_id: str, created_at: str,
                 ticket: str | None, extra: Mapping[str, Any]) -> str:
    lines: list[str] = []
    for lang in ("ja", "en"):
        t = functools.partial(i18n.text, lang=lang)
        lines.append(t("diag.summary.title"))
        lines.append(t("diag.summary.bundle", bundle_id=bundle_id, created=created_at))
        if ticket:
            lines.append(t("diag.summary.ticket", ticket=ticket))
        lines.append(t("diag.summary.agent", version=report_json.get("agent_version", "?"),
                       os=report_json.get("host", {}).get("os_version", "?")))
        if extra.get("correlation_id"):
            lines.append(t("diag.summary.correlation", id=extra["correlation_id"]))
        verdict = "report.compliant" if report_json.get("compliant") else "report.not_compliant"
        lines.append(t(verdict))
        lines.append("")
        for c in report_json.get("checks", []):
            status = t(f"status.{c['status']}")
            lines.append(f"[{status}] {t('check.' + c['id'])}: {c['summary'][lang]}")
            rem = c.get("remediation")
            if rem and c["status"] != "pass":
                lines.append(f"    -> {rem[lang]['title']}")
        lines.append("")
        lines.append("-" * 60)
        lines.append("")
    return "\n".join(lines)


def system_facts() -> dict[str, Any]:
    return {
        "agent_version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "frozen": bool(getattr(sys, "frozen", False)),
        "boot_time": datetime.fromtimestamp(psutil.boot_time(), UTC).isoformat(),
        "memory_total_mb": psutil.virtual_memory().total // (1024 * 1024),
        "cpu_count": psutil.cpu_count(),
        "timezone": datetime.now().astimezone().tzname(),
    }


def _tail(path: Path, limit: int) -> bytes:
    """Only a regular file we own, opened without following links; a FIFO never blocks
    (agent.core.nofollow, issue 18)."""
    return nofollow.read_tail(path, limit)


def _newest_first(path: Path) -> tuple[float, str]:
    """By modification time, newest first (by name, agent.log.10 would come before .2)."""
    try:
        return (-path.stat().st_mtime, path.name)
    except OSError:
        return (0.0, path.name)


def prepare(report: Report, redactor: Redactor, *, level: str = "standard",
            ticket: str | None = None, log_files: Iterable[Path] = (),
            extra: Mapping[str, Any] | None = None,
            facts: Callable[[], dict[str, Any]] = system_facts,
            cap_bytes: int = DEFAULT_CAP_BYTES, bundle_id: str | None = None) -> Preview:
    """Collect and redact. ``extra`` holds policy/decision/certificate metadata when present."""
    if level not in ("strict", "standard"):
        raise BundleError(f"unknown redaction level {level!r}")
    extra = dict(extra or {})
    bundle_id = bundle_id or new_bundle_id()  # kept while the user changes level or ticket
    created = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    posture = redactor.obj(report_to_json(report))
    files: dict[str, bytes] = {}
    files["summary.txt"] = redactor.text(
        summary_text(posture, bundle_id, created, ticket, extra)).encode("utf-8")
    files["posture.json"] = _json(posture)
    files["system.json"] = _json(redactor.obj(facts()))
    for name in ("decision", "policy", "certificate", "connectivity"):
        if name in extra:
            files[f"{name}.json"] = _json(redactor.obj(extra[name]))
    if level == "standard":
        budget = cap_bytes // 2
        deadline = time.monotonic() + LOG_READ_BUDGET_S
        for path in sorted(log_files, key=_newest_first):  # the budget goes to recent lines
            if time.monotonic() > deadline:  # a slow disk or share: stop, never hang the tray
                break
            try:
                raw = _tail(path, min(LOG_TAIL_BYTES, budget))
            except OSError:
                continue
            text = redactor.text(raw.decode("utf-8", errors="replace")).encode("utf-8")
            budget -= len(text)
            if budget < 0:
                break
            files[f"logs/{path.name}"] = text
    preview = Preview(bundle_id, created, level, ticket, files)
    for key in redactor.mapping:
        kind = key.split(":", 1)[0]
        preview.replaced[kind] = preview.replaced.get(kind, 0) + 1
    if preview.total_bytes > cap_bytes:
        raise BundleError(f"bundle would be {preview.total_bytes} bytes, over the cap {cap_bytes}")
    return preview


def manifest(preview: Preview) -> dict[str, Any]:
    return {
        "schema": BUNDLE_SCHEMA,
        "bundle_id": preview.bundle_id,
        "created_at": preview.created_at,
        "agent_version": __version__,
        "redaction_level": preview.level,
        "ticket": preview.ticket,
        "files": [{"name": n, "sha256": hashlib.sha256(b).hexdigest(), "size": len(b)}
                  for n, b in sorted(preview.files.items())],
    }


def build_zip(preview: Preview, signer: Signer | None = None) -> bytes:
    buf = io.BytesIO()
    man = _json(manifest(preview))
    # Fixed timestamps: the same content gives the same bytes (hashable, comparable).
    stamp = (1980, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        entries = dict(preview.files)
        entries[MANIFEST] = man
        if signer is not None:
            entries[SIGNATURE] = signer.sign(man)
            entries[SIGNER_CERT] = signer.certificate_pem()
        for name, data in sorted(entries.items()):
            info = zipfile.ZipInfo(name, stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16  # a regular file, nothing else
            zf.writestr(info, data)
    return buf.getvalue()


def encrypt_for(data: bytes, recipients: Iterable[str]) -> bytes:
    """age encryption (age-encryption.org/v1) to the help desk's X25519 recipients.

    age is a small, well-specified format with independent implementations (age, rage, pyrage):
    the help desk can decrypt with the stock ``age -d -i key.txt`` as well as with ``diag show``.
    """
    try:
        keys = [pyrage.x25519.Recipient.from_str(r.strip()) for r in recipients]
    except Exception as exc:  # pyrage raises its own error types
        raise BundleError(f"invalid help-desk public key: {exc}") from exc
    if not keys:
        raise BundleError("no help-desk public key")
    return bytes(pyrage.encrypt(data, keys))


def file_name(preview: Preview, encrypted: bool) -> str:
    stamp = preview.created_at.replace("-", "").replace(":", "")
    return f"byod-diag-{preview.bundle_id.replace('-', '')}-{stamp}.zip" + (
        ".age" if encrypted else "")


def write_atomic(path: Path, data: bytes) -> None:
    """Write all or nothing: a partial bundle never appears under the final name."""
    atomic_write(path, data)
