"""After TUF: the release signature ``byod-admin release sign`` wrote (SHA256SUMS + .sig).

TUF says the repository's targets role signed these bytes; the release signature says the project
(or the city) that built the release signed them, with a key that never sits on the update server.
Both must hold. The release keys are ``resources/update/release-keys/*.pub`` (Ed25519 PEM), put in
by the installer build; with none shipped, nothing is installed (fail closed).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath

from agent.core.paths import resources_dir
from agent.policy import signing
from agent.policy.errors import PolicyRefused

MAX_SUMS_BYTES = 1024 * 1024
_LINE = re.compile(r"([0-9a-f]{64})  (\S[^\r\n]*)")


class ReleaseRefused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason  # "bad_signature" | "tampered" | "no_key" | "unreadable"
        self.detail = detail


def release_keys_dir() -> Path:
    return resources_dir() / "update" / "release-keys"


def parse_sums(data: bytes) -> dict[str, str]:
    """SHA256SUMS -> {name: hex}; ValueError unless every line is well formed, relative, unique."""
    if len(data) > MAX_SUMS_BYTES:
        raise ValueError("SHA256SUMS too large")
    out: dict[str, str] = {}
    for n, line in enumerate(data.decode("utf-8").splitlines(), 1):
        m = _LINE.fullmatch(line)
        if m is None:
            raise ValueError(f"line {n} is not '<sha256>  <name>'")
        digest, name = m.groups()
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts or "\\" in name or name in out:
            raise ValueError(f"line {n}: unsafe or repeated name")
        out[name] = digest
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_release(artifact: Path, name: str, sums: bytes, sig: bytes,
                   keys_dir: Path | None = None) -> str:
    """The release key id that signed ``sums``, when ``sums`` lists ``name`` with the artifact's
    SHA-256; ReleaseRefused otherwise."""
    anchors = signing.load_trust_anchors(keys_dir or release_keys_dir())
    if not anchors:
        raise ReleaseRefused("no_key", "no release key shipped in resources/update/release-keys")
    try:
        signer = signing.verify(sums, sig, anchors)
    except PolicyRefused as exc:
        raise ReleaseRefused("bad_signature", exc.detail) from exc
    try:
        listed = parse_sums(sums)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReleaseRefused("unreadable", str(exc)) from exc
    digest = listed.get(name)
    if digest is None:
        raise ReleaseRefused("tampered", f"{name} is not in the signed SHA256SUMS")
    if sha256_file(artifact) != digest:
        raise ReleaseRefused("tampered", f"{name} differs from the signed SHA256SUMS")
    return signer.key_id
