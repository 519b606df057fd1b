"""Release integrity: SHA256SUMS over every artifact in a dist directory, signed with Ed25519.

SHA256SUMS is in ``sha256sum`` format (``<hex>  <relative path>``, sorted), so anyone can run
``sha256sum -c SHA256SUMS``; SHA256SUMS.sig is the detached-signature JSON of agent/policy/signing
(same key format, same ``byod-admin keygen``), made with a separate release key. Verification
names every artifact that changed, is missing or was added.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agent.policy import signing
from agent.policy.errors import PolicyRefused

# The SHA256SUMS format is read by the agent's updater too: one parser, on the agent's side.
from agent.update.verify import parse_sums, sha256_file

SUMS = "SHA256SUMS"
SUMS_SIG = "SHA256SUMS.sig"


class Problem(StrEnum):
    MISMATCH = "mismatch"  # the artifact's bytes differ from its listed hash
    MISSING = "missing"  # listed, not in the directory
    EXTRA = "extra"  # in the directory, not listed (not signed)
    BAD_SIGNATURE = "bad_signature"  # SHA256SUMS was not signed by this key
    UNREADABLE = "unreadable"  # SHA256SUMS, its signature or an artifact cannot be read/parsed


@dataclass
class Verification:
    problems: list[tuple[Problem, str]] = field(default_factory=list)  # (kind, file name)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def unreadable(self) -> bool:
        return any(p is Problem.UNREADABLE for p, _ in self.problems)


def artifacts(dist: Path) -> list[str]:
    """Every regular file below ``dist`` but the sums and signature, as sorted POSIX paths."""
    out = []
    for p in dist.rglob("*"):
        rel = p.relative_to(dist).as_posix()
        if rel in (SUMS, SUMS_SIG):
            continue
        if p.is_symlink() or not p.is_file():
            if p.is_symlink():
                out.append(rel)  # listed so that verify reports it rather than follow it
            continue
        out.append(rel)
    return sorted(out)


def sums_text(dist: Path, names: Iterable[str]) -> bytes:
    lines = []
    for name in names:
        path = dist / name
        if path.is_symlink():
            raise ValueError(f"{name}: a symbolic link cannot be a release artifact")
        if "\n" in name or "\\" in name:
            raise ValueError(f"{name!r}: unusable file name")
        lines.append(f"{sha256_file(path)}  {name}\n")
    return "".join(lines).encode("utf-8")


def sign_dist(dist: Path, key: Ed25519PrivateKey) -> tuple[bytes, bytes]:
    """(SHA256SUMS, SHA256SUMS.sig) for the directory as it is now."""
    sums = sums_text(dist, artifacts(dist))
    return sums, signing.sign(sums, key)


def verify_dist(dist: Path, pubkey: Ed25519PublicKey) -> Verification:
    result = Verification()
    try:
        sums = (dist / SUMS).read_bytes()
        sig = (dist / SUMS_SIG).read_bytes()
    except OSError as exc:
        result.problems.append((Problem.UNREADABLE, Path(exc.filename or SUMS).name))
        return result
    anchor = signing.TrustAnchor("release", signing.key_id(pubkey), pubkey)
    try:
        signing.verify(sums, sig, [anchor])
    except PolicyRefused as exc:  # malformed .sig is unreadable; a wrong one is a bad signature
        kind = Problem.UNREADABLE if exc.reason == "sig_malformed" else Problem.BAD_SIGNATURE
        result.problems.append((kind, SUMS_SIG))
        return result
    try:
        listed = parse_sums(sums)
    except (ValueError, UnicodeDecodeError):
        result.problems.append((Problem.UNREADABLE, SUMS))
        return result
    present = set(artifacts(dist))
    for name, digest in sorted(listed.items()):
        path = dist / name
        if name not in present:
            result.problems.append((Problem.MISSING, name))
            continue
        try:
            actual = sha256_file(path)
        except OSError:
            result.problems.append((Problem.UNREADABLE, name))
            continue
        result.checked += 1
        if path.is_symlink() or actual != digest:
            result.problems.append((Problem.MISMATCH, name))
    result.problems += [(Problem.EXTRA, name) for name in sorted(present - set(listed))]
    return result
