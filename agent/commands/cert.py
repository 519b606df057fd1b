"""``byod-agent cert import|request|install|enroll|renew|show|remove``: the user certificate.

Every failure is a KeystoreError with a translated reason: printed to stderr, exit 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path

from agent.core import exitcodes, i18n
from agent.core.messages import Message, msg
from agent.keystore import KeyState, Keystore, KeystoreError, Status, est

# Tests and the tray hand in their own Keystore; the CLI uses the per-user default.
KeystoreFactory = Callable[[], Keystore]


def _lang(args: argparse.Namespace) -> str:
    return str(args.lang or i18n.detect_language())


def _say(args: argparse.Namespace, message: Message) -> None:
    print(i18n.render(message, _lang(args)))


def _read_input(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        raise KeystoreError(KeyState.INVALID_INPUT,
                            msg("cert.error.file_unreadable", path=path)) from None


def _secret_from_stdin() -> str:
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def _cmd_import(args: argparse.Namespace, store: Keystore) -> int:
    data = _read_input(args.file)
    if args.password_stdin:
        password = _secret_from_stdin()
    else:
        password = getpass.getpass(i18n.text("cert.prompt.p12_password", _lang(args)))
    info = store.import_pkcs12(data, password.encode() if password else None)
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
    info = store.install(_read_input(args.file))
    _say(args, msg("cert.done.installed", subject=info.subject,
                   not_after=info.not_after.date().isoformat()))
    return exitcodes.OK


def _cmd_enroll(args: argparse.Namespace, store: Keystore) -> int:
    anchor = _read_input(args.ca).decode("ascii", errors="replace")
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


def render_status(status: Status, lang: str, now: dt.datetime) -> str:
    t = i18n.text
    lines = [f"{t('cert.show.state', lang)}: {t('cert.state.' + status.state.value, lang)}"]
    if status.message is not None and status.state is not KeyState.OK:
        lines.append(f"  {i18n.render(status.message, lang)}")
    if status.info is not None:
        info = status.info
        lines += [
            f"{t('cert.show.subject', lang)}: {info.subject}",
            f"{t('cert.show.issuer', lang)}: {info.issuer}",
            f"{t('cert.show.serial', lang)}: {info.serial}",
            f"{t('cert.show.not_after', lang)}: {info.not_after.isoformat()}",
            f"{t('cert.show.days_left', lang)}: {info.days_left(now)}",
            f"{t('cert.show.sha256', lang)}: {info.sha256}",
        ]
    lines.append(f"{t('cert.show.backend', lang)}: {status.backend}")
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
    if store.remove():
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
    p = sub.add_parser("cert", help="the user certificate (import, enroll, show, remove)")
    p.add_argument("--lang", choices=i18n.LANGS, help="output language (default: OS language)")
    p.set_defaults(handler=run)
    cmds = p.add_subparsers(dest="cert_command", required=True)
    c = cmds.add_parser("import", help="import a PKCS#12 (.p12/.pfx) file from IT")
    c.add_argument("file")
    c.add_argument("--password-stdin", action="store_true",
                   help="read the PKCS#12 password from the first line of stdin")
    c = cmds.add_parser("request", help="make a new key and a CSR for the city's CA")
    c.add_argument("--subject", required=True, help='e.g. "CN=Yamada Taro,O=Example City"')
    c.add_argument("--out", required=True, help="where to write the CSR (PEM)")
    c = cmds.add_parser("install", help="install the issued certificate (PEM, DER or PKCS#7)")
    c.add_argument("file")
    c = cmds.add_parser("enroll", help="enroll over EST (RFC 7030) with a one-time code")
    c.add_argument("--est-url", required=True, help="https://host[:port][/.well-known/est]")
    c.add_argument("--code", required=True, help='one-time code; "-" reads it from stdin')
    c.add_argument("--ca", required=True, help="PEM trust anchor for the EST server")
    c.add_argument("--subject", help="certificate subject (default: CN=<login name>)")
    c.add_argument("--user", default="", help="EST user name, when the CA asks for one")
    cmds.add_parser("renew", help="renew over EST with the current certificate")
    c = cmds.add_parser("show", help="show the stored certificate and its state")
    c.add_argument("--json", action="store_true")
    cmds.add_parser("remove", help="delete the stored certificate, key and passphrase")
