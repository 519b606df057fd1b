"""IT's signing keys: the passphrase (terminal or file) and loading an encrypted Ed25519 key."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.core import i18n
from agent.core.messages import msg
from agent.policy.errors import PolicyRefused

MIN_PASSPHRASE = 12


def read_passphrase(args: argparse.Namespace, *, confirm: bool) -> bytes:
    if args.passphrase_file:
        text = Path(args.passphrase_file).read_text(encoding="utf-8").splitlines()
        value = text[0] if text else ""
    else:
        if not sys.stdin.isatty():
            raise PolicyRefused(msg("admin.passphrase_needed"), "no terminal for the passphrase")
        value = getpass.getpass(i18n.render(msg("admin.passphrase_prompt"),
                                            i18n.detect_language()))
        if confirm and value != getpass.getpass(i18n.render(msg("admin.passphrase_again"),
                                                            i18n.detect_language())):
            raise PolicyRefused(msg("admin.passphrase_mismatch"), "passphrases differ")
    if confirm and len(value) < MIN_PASSPHRASE:
        raise PolicyRefused(msg("admin.passphrase_short", minimum=MIN_PASSPHRASE),
                            "passphrase too short")
    return value.encode("utf-8")


def load_private_key(path: Path, passphrase: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except (ValueError, TypeError) as exc:  # wrong passphrase, not encrypted, not a key
        raise PolicyRefused(msg("admin.key_unusable", path=str(path)), str(exc)) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise PolicyRefused(msg("admin.key_unusable", path=str(path)), "not an Ed25519 key")
    return key
