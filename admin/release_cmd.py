"""``byod-admin build-config`` and ``byod-admin release sign|verify``: installer customization and
release integrity for IT. Registered by admin/cli.py; the logic is in admin.buildconfig and
admin.release, this module is only the command line.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from admin import release
from admin.buildconfig import make_config
from admin.keys import load_private_key, read_passphrase
from agent.core import exitcodes, i18n
from agent.core.fsutil import atomic_write
from agent.core.messages import Message, msg
from agent.policy import signing

VERIFY_MISMATCH = 1  # release verify: an artifact, the list or the signature does not match
VERIFY_UNREADABLE = 2


def _say(message: Message, *, err: bool = False) -> None:
    print(i18n.render(message, i18n.detect_language()), file=sys.stderr if err else sys.stdout)


def build_config(args: argparse.Namespace) -> int:
    out = Path(args.out)
    config = make_config(Path(args.policy), [Path(p) for p in args.trust], out,
                         gateway_ca=Path(args.gateway_ca) if args.gateway_ca else None,
                         helpdesk_key=Path(args.helpdesk_key) if args.helpdesk_key else None,
                         city_ca=Path(args.city_ca) if args.city_ca else None,
                         managed=Path(args.managed) if args.managed else None,
                         update_root=Path(args.update_root) if args.update_root else None,
                         release_keys=[Path(p) for p in args.release_key or ()],
                         now=datetime.now(UTC))
    _say(msg("buildconfig.done", out=str(out), id=config.policy_id, serial=config.serial,
             expires=config.expires, anchors=", ".join(config.anchors)))
    for warning in config.warnings:  # loudly: on stderr, framed, after the summary
        print("!" * 72, file=sys.stderr)
        _say(warning, err=True)
        print("!" * 72, file=sys.stderr)
    return exitcodes.OK


def release_sign(args: argparse.Namespace) -> int:

    dist = Path(args.dist)
    if not dist.is_dir():
        _say(msg("release.no_dist", path=str(dist)), err=True)
        return exitcodes.USAGE
    key = load_private_key(Path(args.key), read_passphrase(args, confirm=False))
    try:
        sums, sig = release.sign_dist(dist, key)
    except ValueError as exc:
        _say(msg("release.unusable_artifact", detail=str(exc)), err=True)
        return exitcodes.USAGE
    atomic_write(dist / release.SUMS, sums, mode=0o644)
    atomic_write(dist / release.SUMS_SIG, sig, mode=0o644)
    _say(msg("release.signed", count=len(sums.splitlines()), path=str(dist / release.SUMS),
             key_id=signing.key_id(key.public_key())))
    return exitcodes.OK


def release_verify(args: argparse.Namespace) -> int:
    try:
        pub = signing.load_public_key(Path(args.pubkey).read_bytes())
    except (OSError, ValueError) as exc:
        _say(msg("admin.pubkey_unusable", path=str(args.pubkey)), err=True)
        print(str(exc), file=sys.stderr)
        return VERIFY_UNREADABLE
    result = release.verify_dist(Path(args.dist), pub)
    for kind, name in result.problems:
        _say(msg(f"release.problem.{kind.value}", name=name), err=True)
    if result.unreadable:
        return VERIFY_UNREADABLE
    if not result.ok:
        return VERIFY_MISMATCH
    _say(msg("release.verified", count=result.checked, key_id=signing.key_id(pub)))
    return exitcodes.OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    b = sub.add_parser("build-config", help="check the city's policy, keys and CA and write the "
                       "directory an installer build embeds (installer/build --config DIR)")
    b.add_argument("--policy", required=True, help="signed policy (POLICY.sig beside it)")
    b.add_argument("--trust", required=True, nargs="+", metavar="PUB",
                   help="policy-signing .pub file(s) the agent will trust")
    b.add_argument("--gateway-ca", help="gateway CA (PEM); must be the policy's tunnel gateway_ca")
    b.add_argument("--helpdesk-key", help="help-desk age recipient file; must be the policy's "
                   "[diagnostics] helpdesk_public_key")
    b.add_argument("--city-ca", metavar="FILE", help="the city CA (PEM) that issues staff "
                   "certificates; shipped as resources/trust/city-ca.pem (cert import and the "
                   "help desk's bundle reader refuse certificates it did not issue)")
    b.add_argument("--managed", help="managed settings TOML (the keys of "
                   "/etc/byod-agent/managed.toml), locked on every PC this installer reaches")
    b.add_argument("--update-root", help="TUF root.json of the update repository")
    b.add_argument("--release-key", action="append", metavar="PUB",
                   help="release signing .pub the agent checks updates with (repeatable)")
    b.add_argument("--out", required=True, help="new (or empty) directory to write")
    b.set_defaults(handler=build_config)
    rel = sub.add_parser("release", help="sign or verify a release directory (SHA256SUMS)")
    rsub = rel.add_subparsers(dest="release_command")
    s = rsub.add_parser("sign", help="write DIST/SHA256SUMS and SHA256SUMS.sig")
    s.add_argument("dist")
    s.add_argument("--key", required=True, help="release signing key (encrypted PKCS#8, keygen)")
    s.add_argument("--passphrase-file", help="read the key passphrase from this file's first line")
    s.set_defaults(handler=release_sign)
    v = rsub.add_parser("verify", help="check DIST against SHA256SUMS(.sig); exit 0 ok, "
                        "1 changed/missing/extra file or bad signature, 2 unreadable")
    v.add_argument("dist")
    v.add_argument("--pubkey", required=True)
    v.set_defaults(handler=release_verify)
