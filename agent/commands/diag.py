"""``byod-agent diag export|show|view|mapping``: the help-desk bundle, staff side and desk side.

Exit codes: ``export`` 0 written, 2 bad option/unwritable, 5 the user declined (or Ctrl-D) at the
consent prompt; ``show``/``view`` 0 verified, 1 unsigned or tampered, 2 hostile or unreadable;
``mapping`` 0, 2 unknown bundle ID or keyring unusable.

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
from agent.core import exitcodes, i18n, prompt, textsafe
from agent.core.errors import os_reason
from agent.core.paths import resources_dir
from agent.diagnostics import bundle as bundle_mod
from agent.diagnostics import export, render
from agent.diagnostics.mapping import MappingError, MappingStore
from agent.diagnostics.reader import (
    MAX_BUNDLE_BYTES,
    MAX_CA_BYTES,
    Bundle,
    HostileBundle,
    load_ca_file,
    open_bundle,
)
from agent.keystore.errors import KeystoreError

VIEW_MODULE = "ui.diag_view"
# The city CA that issues device and user certificates, shipped with the installer; the help
# desk passes its own copy with --ca. Without one, no signer is named (docs/security.md).
CITY_CA = resources_dir() / "trust" / "city-ca.pem"


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
    if sys.stdin is None or not sys.stdin.isatty():
        return False
    answer = prompt.ask(t("diag.consent.prompt"), "--yes")  # Ctrl-D: Cancelled (exit 5)
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
        if sys.stdin is not None and sys.stdin.isatty():  # the person said no: not a usage error
            print(i18n.text("diag.error.no_consent", lang), file=sys.stderr)
            return exitcodes.CANCELLED
        return usage_error(lang, "diag.error.need_yes")
    out = Path(args.out) if args.out else Path.cwd()
    try:
        saved = export.save(prepared, out)
    except bundle_mod.BundleError as exc:
        return usage_error(lang, "diag.error.build", detail=str(exc))
    except OSError as exc:
        return usage_error(lang, "diag.error.write", path=str(export.target_path(prepared, out)),
                           detail=i18n.render(os_reason(exc), lang))
    print(i18n.text("diag.done", lang, bundle_id=saved.bundle_id,
                    path=textsafe.field(saved.path)))
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
        ca_path = Path(args.ca) if getattr(args, "ca", None) else CITY_CA
        ca_data = None
        if getattr(args, "ca", None) or ca_path.is_file():
            with ca_path.open("rb") as fh:
                ca_data = fh.read(MAX_CA_BYTES + 1)
    except (OSError, UnicodeDecodeError) as exc:
        filename = getattr(exc, "filename", None) or args.key
        return usage_error(lang, "diag.error.read", path=textsafe.field(filename),
                           detail=textsafe.field(getattr(exc, "strerror", None) or ""))
    try:
        cas = load_ca_file(ca_data) if ca_data is not None else []
        return open_bundle(data, key_text, cas)
    except HostileBundle as exc:
        return usage_error(lang, "diag.error.hostile", detail=textsafe.field(exc))


def _verified_digest(args: argparse.Namespace, lang: str) -> tuple[bool, dict[str, Any]] | int:
    """(verified, digest) of the bundle named on the command line, or the exit code."""
    bundle = _read_bundle(args, lang)
    if isinstance(bundle, int):
        return bundle
    try:
        return bundle.verification.verified, render.digest(bundle)
    except HostileBundle as exc:
        return usage_error(lang, "diag.error.hostile", detail=textsafe.field(exc))


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
            return usage_error(lang, "diag.error.write", path=args.html,
                               detail=i18n.render(os_reason(exc), lang))
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
        print(f"  {textsafe.field(p):<14} {textsafe.field(found.entries[p])}")
    for p in args.pseudonym or ():
        if p not in found.entries:
            print(i18n.text("diag.mapping.unknown_pseudonym", lang,
                            pseudonym=textsafe.field(p)), file=sys.stderr)
    return exitcodes.OK


def _natural(pseudonym: str) -> tuple[str, int]:
    kind, _, n = pseudonym.rpartition("-")
    return kind, int(n) if n.isdigit() else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("diag", help="cli.diag.help", description="cli.diag.help",
                       epilog="cli.diag.exit")
    dsub = p.add_subparsers(dest="diag_command", required=True, title="cli.commands")
    e = dsub.add_parser("export", help="cli.diag.export", description="cli.diag.export",
                        epilog="cli.diag.export.exit")
    e.add_argument("--out", help="cli.diag.out")
    e.add_argument("--ticket", help="cli.diag.ticket")
    e.add_argument("--level", choices=("strict", "standard"), default="standard",
                   help="cli.diag.level")
    e.add_argument("--yes", action="store_true", help="cli.diag.yes")
    e.set_defaults(handler=run_export)
    s = dsub.add_parser("show", help="cli.diag.show", description="cli.diag.show",
                        epilog="cli.diag.show.exit")
    s.add_argument("bundle", help="cli.diag.bundle")
    s.add_argument("--json", action="store_true", help="cli.opt.json")
    s.add_argument("--html", metavar="OUT", help="cli.diag.html")
    s.add_argument("--key", metavar="HELPDESK_KEY", help="cli.diag.key")
    s.add_argument("--ca", metavar="CITY_CA", help="cli.diag.ca")
    s.set_defaults(handler=run_show)
    v = dsub.add_parser("view", help="cli.diag.view", description="cli.diag.view",
                        epilog="cli.diag.show.exit")
    v.add_argument("bundle", help="cli.diag.bundle")
    v.add_argument("--key", metavar="HELPDESK_KEY", help="cli.diag.key")
    v.add_argument("--ca", metavar="CITY_CA", help="cli.diag.ca")
    v.set_defaults(handler=run_view)
    m = dsub.add_parser("mapping", aliases=["reveal"], help="cli.diag.mapping",
                        description="cli.diag.mapping", epilog="cli.diag.mapping.exit")
    m.add_argument("bundle_id", help="cli.diag.bundle_id")
    m.add_argument("pseudonym", nargs="*", help="cli.diag.pseudonym")
    m.add_argument("--json", action="store_true", help="cli.opt.json")
    m.set_defaults(handler=run_mapping)
