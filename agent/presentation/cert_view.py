"""The certificate dialog's content, decided without Qt: details rows and enrollment defaults."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from agent.core import i18n, textsafe
from agent.core.messages import msg
from agent.keystore import CertStatus, KeyState, Keystore, KeystoreError, city_ca


@dataclass(frozen=True)
class CertDetails:
    state: str  # localized state word
    ok: bool
    rows: tuple[tuple[str, str], ...]  # (label, value)
    problem: str | None  # the state's reason, when not OK
    warning: str | None  # expiry warning line, when one applies
    removable: bool  # anything stored worth removing


def details(status: CertStatus, lang: str, now: dt.datetime) -> CertDetails:
    t = i18n.text
    rows: list[tuple[str, str]] = []
    if status.info is not None:
        info = status.info
        rows = [(t("cert.show.subject", lang), textsafe.field(info.subject)),  # outside text
                (t("cert.show.issuer", lang), textsafe.field(info.issuer)),
                (t("cert.show.not_after", lang), info.not_after.astimezone().strftime(
                    "%Y-%m-%d %H:%M")),
                (t("cert.show.days_left", lang), t("ui.cert.days", lang,
                                                   days=max(info.days_left(now), 0)))]
    if status.protection is not None:  # issue 22: TPM or software key, and why it matters
        rows.append((t("cert.show.protection", lang),
                     t(f"cert.protection.{status.protection}", lang) + "\n"
                     + t(f"cert.protection.{status.protection}_why", lang)))
    problem = None
    if status.state is KeyState.NOT_ENROLLED:  # the core's text names the CLI; here: the dialog
        problem = t("ui.cert.not_enrolled_hint", lang)
    elif status.state is not KeyState.OK and status.message is not None:
        problem = i18n.render(status.message, lang)
    warning = None
    if status.warning is not None:
        key = "cert.warning.expired" if status.warning.threshold == 0 else "cert.warning.expiring"
        warning = t(key, lang, days=status.warning.days_left)
    return CertDetails(state=t(f"cert.state.{status.state.value}", lang),
                       ok=status.state is KeyState.OK, rows=tuple(rows), problem=problem,
                       warning=warning,
                       removable=status.state is not KeyState.NOT_ENROLLED)


@dataclass(frozen=True)
class EnrollDefaults:
    url: str
    trust_anchor_pem: str


def enroll_defaults(store: Keystore) -> EnrollDefaults | None:
    """Where the last enrollment went (kept by the keystore), so a re-enroll needs only a code."""
    config = store.est_config()
    return None if config is None else EnrollDefaults(config.url, config.trust_anchor_pem)


@dataclass(frozen=True)
class CertActionResult:
    """What a dialog action did, in the user's language. Secrets never appear in it."""

    ok: bool
    text: str


def _failed(exc: KeystoreError, lang: str) -> CertActionResult:
    return CertActionResult(False, i18n.text("cert.error.prefix", lang,
                                    reason=i18n.render(exc.message, lang)))


def import_p12(store: Keystore, path: str, password: str, lang: str) -> CertActionResult:
    try:
        data = Path(path).read_bytes()
    except OSError:
        return CertActionResult(False, i18n.render(msg("cert.error.file_unreadable", path=path),
                                                   lang))
    secret = password.encode() if password else None
    try:
        city_ca.check_issuer(city_ca.p12_chain(data, secret))  # the wrong file, said now
        info = store.import_pkcs12(data, secret)
    except KeystoreError as exc:
        return _failed(exc, lang)
    subject = textsafe.field(info.subject)  # outside text: one line, no control characters
    return CertActionResult(True, i18n.render(msg("cert.done.imported", subject=subject,
                                                  not_after=info.not_after.date().isoformat()),
                                              lang))


def enroll(store: Keystore, *, url: str, anchor: str, code: str, subject: str,
           lang: str) -> CertActionResult:
    """``anchor`` is PEM text, or the path of a PEM file IT handed out."""
    if "-----BEGIN" not in anchor:
        try:
            anchor = Path(anchor).read_text(encoding="ascii", errors="replace")
        except OSError:
            return CertActionResult(False, i18n.render(
                msg("cert.error.file_unreadable", path=anchor), lang))
    try:
        from agent.keystore import est  # noqa: PLC0415 - requests only when enrolling

        info = est.enroll(store, url.strip(), anchor, subject=subject, code=code.strip())
    except KeystoreError as exc:
        return _failed(exc, lang)
    subject = textsafe.field(info.subject)
    return CertActionResult(True, i18n.render(msg("cert.done.enrolled", subject=subject,
                                         not_after=info.not_after.date().isoformat()), lang))


def remove(store: Keystore, lang: str) -> CertActionResult:
    try:
        complete = store.remove()
    except KeystoreError as exc:
        return _failed(exc, lang)
    if not complete:
        return CertActionResult(False, i18n.render(msg("cert.error.remove_partial"), lang))
    return CertActionResult(True, i18n.render(msg("cert.done.removed"), lang))
