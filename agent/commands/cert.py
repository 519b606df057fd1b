"""``byod-agent cert import|request|install|enroll|renew|show|remove``: the user certificate.

Every failure is a KeystoreError with a translated reason: printed to stderr, exit 2. Ctrl-D at
the password prompt is exit 5 (cancelled), no terminal to ask at is exit 2 naming
``--password-stdin``. ``import`` and ``install`` refuse a certificate that the city's CA did not
issue when the build carries that CA (``resources/trust/city-ca.pem``, docs/certificates.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path

from agent.core import exitcodes, i18n, prompt, textsafe
from agent.core.errors import os_reason
from agent.core.messages import Message, msg
from agent.keystore import CertStatus, KeyState, Keystore, KeystoreError, certs, city_ca, est
from agent.keystore.store import CERT_FILE, EST_FILE, KEY_FILE, PENDING_KEY_FILE

# Tests and the tray hand in their own Keystore; the CLI uses the per-user default.
KeystoreFactory = Callable[[], Keystore]


def _lang(args: argparse.Namespace) -> str:
    return str(args.lang or i18n.detect_language())


def _say(args: argparse.Namespace, message: Message) -> None:
    print(i18n.render(message, _lang(args)))


MAX_INPUT_BYTES = 1024 * 1024  # a PKCS#12 or PEM chain from IT is a few KiB


def _read_input(path: str, lang: str) -> bytes:
    try:
        with Path(path).open("rb") as fh:
            data = fh.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise KeystoreError(KeyState.INVALID_INPUT, msg(
            "cert.error.file_unreadable_reason", path=path,
            reason=i18n.render(os_reason(exc), lang))) from None
    if len(data) > MAX_INPUT_BYTES:
        raise KeystoreError(KeyState.INVALID_INPUT, msg("cert.error.file_too_large", path=path))
    return data


def _secret_from_stdin() -> str:
    return prompt.read_stdin_line()


STORED_FILES = (KEY_FILE, CERT_FILE, PENDING_KEY_FILE, EST_FILE)


def _cmd_import(args: argparse.Namespace, store: Keystore) -> int:
    data = _read_input(args.file, _lang(args))
    if args.password_stdin:
        password = _secret_from_stdin()
    else:
        password = prompt.ask_secret(i18n.text("cert.prompt.p12_password", _lang(args)),
                                     "--password-stdin")
    secret = password.encode() if password else None
    city_ca.check_issuer(city_ca.p12_chain(data, secret))
    info = store.import_pkcs12(data, secret)
    _say(args, msg("cert.done.imported", subject=info.subject,
                   not_after=info.not_after.date().isoformat()))
    return exitcodes.OK


def _cmd_request(args: argparse.Namespace, store: Keystore) -> int:
    csr = store.create_request(args.subject)
    try:
        Path(args.out).write_bytes(csr)  # a CSR is public: no secrecy needed
    except OSError:
        raise KeystoreError(KeyState.INVALID_INPUT,
                            msg("cert.error.file_unwritable", path=args.out)) from None
    _say(args, msg("cert.done.requested", path=args.out))
    return exitcodes.OK


def _cmd_install(args: argparse.Namespace, store: Keystore) -> int:
    data = _read_input(args.file, _lang(args))
    city_ca.check_issuer(certs.load_certificates(data))
    info = store.install(data)
    _say(args, msg("cert.done.installed", subject=info.subject,
                   not_after=info.not_after.date().isoformat()))
    return exitcodes.OK


def _cmd_enroll(args: argparse.Namespace, store: Keystore) -> int:
    anchor = _read_input(args.ca, _lang(args)).decode("ascii", errors="replace")
    code = _secret_from_stdin() if args.code == "-" else args.code
    subject = args.subject or f"CN={getpass.getuser()}"
    info = est.enroll(store, args.est_url, anchor, subject=subject, code=code, user=args.user)
    _say(args, msg("cert.done.enrolled", subject=info.subject,
                   not_after=info.not_after.date().isoformat()))
    return exitcodes.OK


def _cmd_renew(args: argparse.Namespace, store: Keystore) -> int:
    info = est.renew(store)
    _say(args, msg("cert.done.renewed", not_after=info.not_after.date().isoformat()))
    return exitcodes.OK


_BACKEND_KEYS: dict[str, str] = {
    "keyring.backends.SecretService.Keyring": "cert.backend.secret_service",
    "keyring.backends.libsecret.Keyring": "cert.backend.secret_service",
    "keyring.backends.Windows.WinVaultKeyring": "cert.backend.windows",
    "keyring.backends.macOS.Keyring": "cert.backend.macos",
}


def backend_sentence(name: str, lang: str) -> str:
    """The password store in plain words (the class name stays in ``--json`` for the help desk)."""
    key = _BACKEND_KEYS.get(name)
    if key is None:
        if name == "keyring.backends.chainer.ChainerBackend":
            key = "cert.backend.auto"
        elif name in ("keyring.backends.fail.Keyring", "keyring.backends.null.Keyring"):
            key = "cert.backend.none"
        else:
            key = "cert.backend.refused"
    return i18n.text(key, lang)


def render_status(status: CertStatus, lang: str, now: dt.datetime) -> str:
    t = i18n.text
    lines = [f"{t('cert.show.state', lang)}: {t('cert.state.' + status.state.value, lang)}"]
    if status.message is not None and status.state is not KeyState.OK:
        lines.append(f"  {i18n.render(status.message, lang)}")
    if status.info is not None:
        info = status.info
        lines += [
            f"{t('cert.show.subject', lang)}: {textsafe.field(info.subject)}",  # outside text
            f"{t('cert.show.issuer', lang)}: {textsafe.field(info.issuer)}",
            f"{t('cert.show.serial', lang)}: {info.serial}",
            f"{t('cert.show.not_after', lang)}: {info.not_after.isoformat()}",
            f"{t('cert.show.days_left', lang)}: {info.days_left(now)}",
            f"{t('cert.show.sha256', lang)}: {info.sha256}",
        ]
    lines.append(f"{t('cert.show.backend', lang)}: {backend_sentence(status.backend, lang)}")
    if status.protection is not None:  # issue 22: where the key lives, and why it matters
        lines.append(f"{t('cert.show.protection', lang)}: "
                     f"{t('cert.protection.' + status.protection, lang)}")
        lines.append("  " + t(f"cert.protection.{status.protection}_why", lang))
    if status.warning is not None:
        key = "cert.warning.expired" if status.warning.threshold == 0 else "cert.warning.expiring"
        lines.append(t(key, lang, days=status.warning.days_left))
    return "\n".join(lines)


def _cmd_show(args: argparse.Namespace, store: Keystore) -> int:
    now = dt.datetime.now(dt.UTC)
    status = store.status()
    if args.json:
        print(json.dumps(status.to_json(now), ensure_ascii=False, indent=2))
    else:
        print(render_status(status, _lang(args), now))
    return exitcodes.OK


def _cmd_remove(args: argparse.Namespace, store: Keystore) -> int:
    stored = [n for n in STORED_FILES if (store.directory / n).exists()]
    removed_passphrase = store.remove()
    if not stored:  # nothing was there: say so instead of claiming files were deleted
        _say(args, msg("cert.done.nothing_to_remove"))
        return exitcodes.OK
    if removed_passphrase:
        _say(args, msg("cert.done.removed"))
        return exitcodes.OK
    raise KeystoreError(KeyState.KEYRING_UNAVAILABLE, msg("cert.error.remove_partial"))


_COMMANDS: dict[str, Callable[[argparse.Namespace, Keystore], int]] = {
    "import": _cmd_import, "request": _cmd_request, "install": _cmd_install,
    "enroll": _cmd_enroll, "renew": _cmd_renew, "show": _cmd_show, "remove": _cmd_remove,
}


def run(args: argparse.Namespace, factory: KeystoreFactory = Keystore.default) -> int:
    try:
        return _COMMANDS[args.cert_command](args, factory())
    except KeystoreError as exc:
        print(i18n.render(msg("cert.error.prefix", reason=i18n.render(exc.message, _lang(args))),
                          _lang(args)), file=sys.stderr)
        return exitcodes.USAGE


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("cert", help="cli.cert.help", description="cli.cert.help",
                       epilog="cli.cert.exit")
    p.set_defaults(handler=run)
    cmds = p.add_subparsers(dest="cert_command", required=True, title="cli.commands")
    c = cmds.add_parser("import", help="cli.cert.import", description="cli.cert.import",
                        epilog="cli.cert.import.exit")
    c.add_argument("file", help="cli.cert.import.file")
    c.add_argument("--password-stdin", action="store_true", help="cli.cert.password_stdin")
    c = cmds.add_parser("request", help="cli.cert.request", description="cli.cert.request",
                        epilog="cli.cert.exit")
    c.add_argument("--subject", required=True, help="cli.cert.request.subject")
    c.add_argument("--out", required=True, help="cli.cert.request.out")
    c = cmds.add_parser("install", help="cli.cert.install", description="cli.cert.install",
                        epilog="cli.cert.exit")
    c.add_argument("file", help="cli.cert.install.file")
    c = cmds.add_parser("enroll", help="cli.cert.enroll", description="cli.cert.enroll",
                        epilog="cli.cert.exit")
    c.add_argument("--est-url", required=True, help="cli.cert.enroll.est_url")
    c.add_argument("--code", required=True, help="cli.cert.enroll.code")
    c.add_argument("--ca", required=True, help="cli.cert.enroll.ca")
    c.add_argument("--subject", help="cli.cert.enroll.subject")
    c.add_argument("--user", default="", help="cli.cert.enroll.user")
    cmds.add_parser("renew", help="cli.cert.renew", description="cli.cert.renew",
                    epilog="cli.cert.exit")
    c = cmds.add_parser("show", help="cli.cert.show", description="cli.cert.show",
                        epilog="cli.cert.show.exit")
    c.add_argument("--json", action="store_true", help="cli.opt.json")
    cmds.add_parser("remove", help="cli.cert.remove", description="cli.cert.remove",
                    epilog="cli.cert.remove.exit")
