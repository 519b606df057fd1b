"""``byod-agent diag export|show``: the help-desk bundle, from the staff side and the desk side."""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from pathlib import Path
from typing import Any

from agent import exitcodes, i18n, logsetup
from agent.commands import usage_error
from agent.diagnostics import bundle as bundle_mod
from agent.diagnostics import render
from agent.diagnostics.identity import local_identities
from agent.diagnostics.reader import MAX_BUNDLE_BYTES, HostileBundle, open_bundle
from agent.diagnostics.redact import Redactor
from agent.diagnostics.signer import device_signer
from agent.policy.decision import decision_to_json, policy_to_json
from agent.policy.errors import PolicyRefused
from agent.policy.evaluate import evaluate
from agent.posture.context import default_context
from agent.posture.engine import run_posture
from agent.posture.model import Report

_TICKET = re.compile(r"^[A-Za-z0-9._-]{1,40}$")


def _consent(preview: bundle_mod.Preview, lang: str, assume_yes: bool) -> bool:
    t = functools.partial(i18n.text, lang=lang)
    print(t("diag.preview.header", bundle_id=preview.bundle_id), file=sys.stderr)
    for name, data in sorted(preview.files.items()):
        print(f"  {name}  ({len(data):,} bytes)", file=sys.stderr)
    replaced = ", ".join(f"{kind}: {n}" for kind, n in sorted(preview.replaced.items())) or "-"
    print(t("diag.preview.replaced", replaced=replaced), file=sys.stderr)
    print("", file=sys.stderr)
    print(t("diag.consent.text"), file=sys.stderr)
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        return False
    answer = input(t("diag.consent.prompt"))
    return answer.strip().lower() in ("y", "yes", "はい")


def _collect() -> tuple[Report, dict[str, Any], list[str], int]:
    """Posture, decision and policy metadata; a refused policy still yields a bundle (that is
    exactly when the help desk is needed), with the refusal reason inside."""
    extra: dict[str, Any] = {}
    try:
        result = evaluate()
    except PolicyRefused as exc:
        extra["policy"] = {"status": "refused", "reason": i18n.both(exc.message),
                           "detail": exc.detail}
        return run_posture(default_context()), extra, [], bundle_mod.DEFAULT_CAP_BYTES
    extra["decision"] = decision_to_json(result.decision)
    extra["correlation_id"] = result.decision.correlation_id
    extra["policy"] = policy_to_json(result.loaded)
    diag = result.loaded.policy.diagnostics
    key = diag.helpdesk_public_key
    recipients = [key] if key and key.startswith("age1") else []
    return result.report, extra, recipients, diag.max_bundle_bytes


def run_export(args: argparse.Namespace) -> int:
    lang = args.lang or i18n.detect_language()
    if args.ticket and not _TICKET.match(args.ticket):
        return usage_error(lang, "diag.error.ticket")
    report, extra, recipients, cap = _collect()
    users, hosts = local_identities()
    redactor = Redactor(user_names=users, host_names=hosts)
    try:
        preview = bundle_mod.prepare(report, redactor, level=args.level, ticket=args.ticket,
                                     log_files=logsetup.log_files(), extra=extra, cap_bytes=cap)
    except bundle_mod.BundleError as exc:
        return usage_error(lang, "diag.error.build", detail=str(exc))
    if not _consent(preview, lang, args.yes):
        key = "diag.error.no_consent" if sys.stdin.isatty() or args.yes else "diag.error.need_yes"
        return usage_error(lang, key)
    data = bundle_mod.build_zip(preview, device_signer())
    if recipients:
        try:
            data = bundle_mod.encrypt_for(data, recipients)
        except bundle_mod.BundleError as exc:
            return usage_error(lang, "diag.error.build", detail=str(exc))
    out = Path(args.out) if args.out else Path.cwd()
    name = bundle_mod.file_name(preview, bool(recipients))
    target = out / name if out.is_dir() else out
    try:
        bundle_mod.write_atomic(target, data)
    except OSError as exc:
        return usage_error(lang, "diag.error.write", path=str(target),
                           detail=exc.strerror or str(exc))
    print(i18n.text("diag.done", lang, bundle_id=preview.bundle_id, path=str(target)))
    return exitcodes.OK


def run_show(args: argparse.Namespace) -> int:
    lang = args.lang or i18n.detect_language()
    path = Path(args.bundle)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BUNDLE_BYTES + 1)  # the reader refuses anything larger
        key_text = Path(args.key).read_text(encoding="utf-8") if args.key else None
    except OSError as exc:
        return usage_error(lang, "diag.error.read", path=str(exc.filename),
                           detail=exc.strerror or "")
    try:
        bundle = open_bundle(data, key_text)
        digest = render.digest(bundle)
    except HostileBundle as exc:
        return usage_error(lang, "diag.error.hostile", detail=str(exc))
    if args.html:
        try:
            bundle_mod.write_atomic(Path(args.html), render.as_html(digest).encode("utf-8"))
        except OSError as exc:
            return usage_error(lang, "diag.error.write", path=args.html, detail=exc.strerror or "")
    if args.json:
        print(json.dumps(digest, ensure_ascii=False, indent=2))
    else:
        print(render.as_text(digest))
    return exitcodes.OK if bundle.verification.verified else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("diag", help="diagnostic bundles for the help desk")
    dsub = p.add_subparsers(dest="diag_command", required=True)
    e = dsub.add_parser("export", help="write a redacted diagnostic bundle")
    e.add_argument("--out", help="directory or file name (default: current directory)")
    e.add_argument("--ticket", help="help-desk ticket number to include")
    e.add_argument("--level", choices=("strict", "standard"), default="standard",
                   help="strict leaves out the logs")
    e.add_argument("--yes", action="store_true", help="agree without asking (for scripts)")
    e.add_argument("--lang", choices=i18n.LANGS)
    e.set_defaults(handler=run_export)
    s = dsub.add_parser("show", help="verify and read a bundle (help desk)")
    s.add_argument("bundle")
    s.add_argument("--json", action="store_true")
    s.add_argument("--html", metavar="OUT", help="also write an HTML page")
    s.add_argument("--key", metavar="HELPDESK_KEY", help="age identity file for encrypted bundles")
    s.add_argument("--lang", choices=i18n.LANGS)
    s.set_defaults(handler=run_show)
