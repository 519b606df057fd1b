"""``byod-admin``: IT's command line (policy signing, installer configuration, release signing).

Policy signing keys are Ed25519. The private key is only ever written encrypted (PKCS#8 with a
passphrase IT types or keeps in a file of its own): a plaintext private key never lands on disk.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from admin import gateway_certs, rdp_fingerprint, update_repo
from admin import release_cmd as admin_release
from admin.keys import load_private_key, read_passphrase
from agent import __version__
from agent.core import clirun, exitcodes, i18n, logsetup
from agent.core.errors import os_reason
from agent.core.fsutil import atomic_write
from agent.core.messages import Message, msg
from agent.policy import signing
from agent.policy.errors import PolicyRefused
from agent.policy.loader import read_pair, sig_path, verify_policy
from agent.policy.schema import parse_policy

KEY_NAME = "policy-signing.key"
PUB_NAME = "policy-signing.pub"


def _say(message: Message, *, err: bool = False) -> None:
    print(i18n.render(message, i18n.detect_language()), file=sys.stderr if err else sys.stdout)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)  # never overwrite a key
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, mode)  # umask may have narrowed or widened it on creation


def keygen(args: argparse.Namespace) -> int:
    out = Path(args.out)
    key_path, pub_path = out / KEY_NAME, out / PUB_NAME
    if key_path.exists() or pub_path.exists():
        _say(msg("admin.exists", path=str(key_path if key_path.exists() else pub_path)), err=True)
        return exitcodes.USAGE
    secret = read_passphrase(args, confirm=True)
    out.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(secret))
    _write_new(key_path, pem, 0o600)
    _write_new(pub_path, signing.public_key_pem(key.public_key()), 0o644)
    _say(msg("admin.keygen_done", keyfile=str(key_path), pub=str(pub_path),
             key_id=signing.key_id(key.public_key())))
    return exitcodes.OK


def sign(args: argparse.Namespace) -> int:
    policy_path = Path(args.policy)
    data = policy_path.read_bytes()
    policy = parse_policy(data)  # never sign a policy the agent would refuse
    now = datetime.now(UTC)
    if policy.expires <= now:  # every agent would refuse it at once
        _say(msg("admin.sign_expired", expires=policy.expires.isoformat()), err=True)
        return exitcodes.USAGE
    key = load_private_key(Path(args.key), read_passphrase(args, confirm=False))
    out = sig_path(policy_path)
    atomic_write(out, signing.sign(data, key), mode=0o644)
    _say(msg("admin.signed", sig=str(out), key_id=signing.key_id(key.public_key())))
    return exitcodes.OK


def verify(args: argparse.Namespace) -> int:
    try:
        anchor_key = signing.load_public_key(Path(args.pubkey).read_bytes())
    except (OSError, ValueError) as exc:
        _say(msg("admin.pubkey_unusable", path=str(args.pubkey)), err=True)
        print(str(exc), file=sys.stderr)
        return exitcodes.USAGE
    anchor = signing.TrustAnchor(Path(args.pubkey).stem, signing.key_id(anchor_key), anchor_key)
    data, sig = read_pair(Path(args.policy))
    policy, _ = verify_policy(data, sig, [anchor], now=datetime.now(UTC))
    _say(msg("admin.valid", id=policy.id, serial=policy.serial, key_id=anchor.key_id,
             expires=policy.expires.isoformat()))
    return exitcodes.OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="byod-admin", description="BYOD Agent tools for IT.")
    parser.add_argument("--version", action="version", version=f"byod-admin {__version__}")
    sub = parser.add_subparsers(dest="command")
    k = sub.add_parser("keygen", help="make a policy signing key pair (Ed25519)")
    k.add_argument("--out", required=True, help="directory for policy-signing.key/.pub")
    k.add_argument("--passphrase-file", help="read the key passphrase from this file's first line")
    k.set_defaults(handler=keygen)
    pol = sub.add_parser("policy", help="sign or verify a policy file")
    psub = pol.add_subparsers(dest="policy_command")
    s = psub.add_parser("sign", help="write POLICY.sig beside POLICY")
    s.add_argument("policy")
    s.add_argument("--key", required=True, help="policy-signing.key (encrypted PKCS#8)")
    s.add_argument("--passphrase-file", help="read the key passphrase from this file's first line")
    s.set_defaults(handler=sign)
    v = psub.add_parser("verify", help="check POLICY with POLICY.sig against one public key")
    v.add_argument("policy")
    v.add_argument("--pubkey", required=True)
    v.set_defaults(handler=verify)
    admin_release.register(sub)  # build-config, release sign|verify
    gateway_certs.register(sub)
    rdp_fingerprint.register(sub)
    update_repo.register(sub)  # update-repo init|add|promote|publish|timestamp|rotate-root
    return parser


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return exitcodes.USAGE
    try:
        return int(args.handler(args))
    except PolicyRefused as exc:
        _say(exc.message, err=True)
        print(exc.detail, file=sys.stderr)  # IT reads the technical detail too
        return exitcodes.USAGE
    except OSError as exc:
        _say(msg("admin.io_error", path=str(exc.filename or ""),
                 detail=i18n.render(os_reason(exc), i18n.detect_language())), err=True)
        return exitcodes.USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Any other AgentError: its message and code; anything unexpected: exit 70, log only."""
    try:
        log_file: Path | None = logsetup.setup()
    except OSError:
        log_file = None
    return clirun.guarded(lambda: _run(argv), i18n.detect_language(), log_file)
