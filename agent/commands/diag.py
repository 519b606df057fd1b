"""``byod-agent diag export|show|view|mapping``: the help-desk bundle, staff side and desk side.

``view`` is the only one that needs Qt: ``ui.diag_view`` is imported through importlib when the
command runs, so agent/ never imports Qt (tests/unit/test_architecture.py).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from agent.commands import usage_error
from agent.commands.tray import has_display, ui_installed
from agent.core import exitcodes, i18n
from agent.diagnostics import bundle as bundle_mod
from agent.diagnostics import export, render
from agent.diagnostics.mapping import MappingError, MappingStore
from agent.diagnostics.reader import MAX_BUNDLE_BYTES, Bundle, HostileBundle, open_bundle
from agent.keystore.errors import KeystoreError

VIEW_MODULE = "ui.diag_view"


def _consent(collected: export.Collected, prepared: export.Prepared, lang: str,
             assume_yes: bool) -> bool:
    t = functools.partial(i18n.text, lang=lang)
    preview = prepared.preview
    print(t("diag.preview.header", bundle_id=preview.bundle_id), file=sys.stderr)
    for name, data in sorted(preview.files.items()):
        print(f"  {name}  ({len(data):,} bytes)", file=sys.stderr)
    replaced = ", ".join(f"{kind}: {n}" for kind, n in sorted(preview.replaced.items())) or "-"
    print(t("diag.preview.replaced", replaced=replaced), file=sys.stderr)
    print("", file=sys.stderr)
    print(export.consent_text(collected, lang), file=sys.stderr)
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        return False
    answer = input(t("diag.consent.prompt"))
    return answer.strip().lower() in ("y", "yes", "はい")


def run_export(args: argparse.Namespace) -> int:
    lang = args.lang or i18n.detect_language()
    if args.ticket and not export.TICKET.match(args.ticket):
        return usage_error(lang, "diag.error.ticket")
    collected = export.collect()
    try:
        prepared = export.preview(collected, level=args.level, ticket=args.ticket)
    except bundle_mod.BundleError as exc:
        return usage_error(lang, "diag.error.build", detail=str(exc))
    if not _consent(collected, prepared, lang, args.yes):
        key = "diag.error.no_consent" if sys.stdin.isatty() or args.yes else "diag.error.need_yes"
        return usage_error(lang, key)
    out = Path(args.out) if args.out else Path.cwd()
    try:
        saved = export.save(prepared, out)
    except bundle_mod.BundleError as exc:
        return usage_error(lang, "diag.error.build", detail=str(exc))
    except OSError as exc:
        return usage_error(lang, "diag.error.write", path=str(export.target_path(prepared, out)),
                           detail=exc.strerror or str(exc))
    print(i18n.text("diag.done", lang, bundle_id=saved.bundle_id, path=str(saved.path)))
    if saved.mapping_problem:
        print(i18n.text("diag.mapping.not_kept_note", lang,
                        reason=i18n.render(saved.mapping_problem, lang)), file=sys.stderr)
    return exitcodes.OK


def _read_bundle(args: argparse.Namespace, lang: str) -> Bundle | int:
    """The opened bundle, or the exit code after printing why it cannot be read."""
    path = Path(args.bundle)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BUNDLE_BYTES + 1)  # the reader refuses anything larger
        key_text = Path(args.key).read_text(encoding="utf-8") if args.key else None
    except OSError as exc:
        return usage_error(lang, "diag.error.read", path=str(exc.filename),
                           detail=exc.strerror or "")
    try:
        return open_bundle(data, key_text)
    except HostileBundle as exc:
        return usage_error(lang, "diag.error.hostile", detail=str(exc))


def _verified_digest(args: argparse.Namespace, lang: str) -> tuple[bool, dict[str, Any]] | int:
    """(verified, digest) of the bundle named on the command line, or the exit code."""
    bundle = _read_bundle(args, lang)
    if isinstance(bundle, int):
        return bundle
    try:
        return bundle.verification.verified, render.digest(bundle)
    except HostileBundle as exc:
        return usage_error(lang, "diag.error.hostile", detail=str(exc))


def run_show(args: argparse.Namespace) -> int:
    lang = args.lang or i18n.detect_language()
    got = _verified_digest(args, lang)
    if isinstance(got, int):
        return got
    verified, digest = got
    if args.html:
        try:
            bundle_mod.write_atomic(Path(args.html), render.as_html(digest, lang).encode("utf-8"))
        except OSError as exc:
            return usage_error(lang, "diag.error.write", path=args.html, detail=exc.strerror or "")
    if args.json:
        print(json.dumps(digest, ensure_ascii=False, indent=2))
    else:
        print(render.as_text(digest, lang))
    return exitcodes.OK if verified else 1


def run_view(args: argparse.Namespace) -> int:
    """``diag show`` in a window; the same exit codes (0 verified, 1 unsigned/tampered, 2)."""
    lang = args.lang or i18n.detect_language()
    if not ui_installed():
        return usage_error(lang, "ui.cli.no_qt")
    if not (has_display(os.environ) or os.environ.get("QT_QPA_PLATFORM")):
        return usage_error(lang, "diag.view.no_display")
    got = _verified_digest(args, lang)
    if isinstance(got, int):
        return got
    verified, digest = got
    view = importlib.import_module(VIEW_MODULE)
    view.main(digest, lang=lang, title=Path(args.bundle).name)
    return exitcodes.OK if verified else 1


def run_mapping(args: argparse.Namespace) -> int:
    """For the user: what a pseudonym in their bundle stood for (never sent to anyone)."""
    lang = args.lang or i18n.detect_language()
    try:
        found = MappingStore().reveal(args.bundle_id)
    except MappingError as exc:
        return usage_error(lang, exc.key, **exc.params)
    except KeystoreError as exc:
        return usage_error(lang, "diag.mapping.keystore", reason=i18n.render(exc.message, lang))
    wanted = [p for p in args.pseudonym if p in found.entries] if args.pseudonym else sorted(
        found.entries, key=_natural)
    if args.json:
        print(json.dumps({"bundle_id": found.bundle_id, "expires_at": found.expires_at.isoformat(),
                          "entries": {p: found.entries[p] for p in wanted}},
                         ensure_ascii=False, indent=2))
        return exitcodes.OK
    print(i18n.text("diag.mapping.header", lang, bundle_id=found.bundle_id,
                    expires=found.expires_at.date().isoformat()))
    for p in wanted:
        print(f"  {p:<14} {found.entries[p]}")
    for p in args.pseudonym or ():
        if p not in found.entries:
            print(i18n.text("diag.mapping.unknown_pseudonym", lang, pseudonym=p), file=sys.stderr)
    return exitcodes.OK


def _natural(pseudonym: str) -> tuple[str, int]:
    kind, _, n = pseudonym.rpartition("-")
    return kind, int(n) if n.isdigit() else 0


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
    v = dsub.add_parser("view", help="verify and read a bundle in a window (help desk)")
    v.add_argument("bundle")
    v.add_argument("--key", metavar="HELPDESK_KEY", help="age identity file for encrypted bundles")
    v.add_argument("--lang", choices=i18n.LANGS)
    v.set_defaults(handler=run_view)
    m = dsub.add_parser("mapping", aliases=["reveal"],
                        help="what the placeholders in one of your bundles stood for (stays here)")
    m.add_argument("bundle_id", help="the bundle ID, e.g. K7QM-4TXD")
    m.add_argument("pseudonym", nargs="*", help="only these placeholders, e.g. host-1 ip-2")
    m.add_argument("--json", action="store_true")
    m.add_argument("--lang", choices=i18n.LANGS)
    m.set_defaults(handler=run_mapping)
