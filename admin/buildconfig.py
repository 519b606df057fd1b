"""IT's installer customization: check the city's policy, trust anchors, gateway CA and help-desk
key with the agent's own code, and write the directory the installer build embeds.

The directory replaces resources/policy and resources/trust in the build (read-only after install)::

    DIR/policy/<name>.toml, <name>.toml.sig   the signed policy, bytes unchanged
    DIR/trust/<name>.pub                      the trust anchors (Ed25519 PEM)
    DIR/trust/city-ca.pem                     the city CA that issues staff certificates
                                              (--city-ca; cert import and the bundle reader)
    DIR/gateway-ca.pem, DIR/helpdesk.age      what IT handed in, for the record
    DIR/build-config.json                     what was checked, with SHA-256 of every file

The gateway CA and the help-desk key reach the agent only through the signed policy (a target's
``gateway_ca``, ``[diagnostics] helpdesk_public_key``), so those two arguments are cross-checked
against the policy: an installer cannot carry a CA or key the policy does not name.
A DEMO trust anchor or the DEMO policy never passes, whatever it is renamed to.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from agent.core.messages import Message, msg
from agent.core.paths import resources_dir
from agent.diagnostics.bundle import BundleError, encrypt_for
from agent.policy import signing
from agent.policy.errors import PolicyRefused
from agent.policy.loader import read_pair, sig_path, verify_policy
from agent.policy.model import Policy

FORMAT = "byod-build-config/1"
MANIFEST = "build-config.json"
# The shipped DEMO anchor's key id: refused even when the .pub is renamed (docs/it-guide.md).
DEMO_KEY_IDS = frozenset({"e93e5bb8f39530ba"})
EXPIRY_MARGIN = timedelta(days=30)  # an installer that goes out must outlive its roll-out


class ConfigRefused(PolicyRefused):
    """The customization cannot go into an installer; the message says which file and why."""


def _refuse(key: str, detail: str, **params: str | int) -> ConfigRefused:
    return ConfigRefused(msg(f"buildconfig.refused.{key}", **params), detail)


def demo_key_ids() -> frozenset[str]:
    """Key ids of the DEMO anchors shipped in this source tree, plus the known one."""
    ids = {a.key_id for a in signing.load_trust_anchors(resources_dir() / "trust") if a.demo}
    return DEMO_KEY_IDS | ids


def is_demo_anchor(anchor: signing.TrustAnchor) -> bool:
    return anchor.demo or anchor.key_id in demo_key_ids()


def is_demo_policy(policy: Policy) -> bool:
    if "demo" in policy.id.lower():
        return True
    return any(t.host.endswith(".invalid") or (t.gateway_host or "").endswith(".invalid")
               for t in policy.targets)


def load_anchor(path: Path) -> signing.TrustAnchor:
    try:
        key = signing.load_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise _refuse("trust_unusable", f"{path}: {exc}", path=str(path)) from exc
    anchor = signing.TrustAnchor(path.stem, signing.key_id(key), key)
    if is_demo_anchor(anchor):
        raise _refuse("demo_trust", f"{path}: DEMO trust anchor {anchor.key_id}", path=str(path))
    return anchor


def _fingerprints(pem: str) -> set[str]:
    certs = x509.load_pem_x509_certificates(pem.encode("ascii"))
    return {c.fingerprint(hashes.SHA256()).hex() for c in certs}


def _load_ca_pem(path: Path, kind: str, *, now: datetime) -> str:
    """A PEM file of CA certificates, each currently valid, marked CA and not DEMO.

    ``kind`` (``gateway_ca`` or ``city_ca``) picks the messages: ``buildconfig.refused.<kind>_
    unusable``, ``<kind>_expired`` and ``demo_<kind>``.
    """
    try:
        pem = path.read_text(encoding="ascii")
        certs = x509.load_pem_x509_certificates(pem.encode("ascii"))
    except (OSError, ValueError, UnicodeError) as exc:
        raise _refuse(f"{kind}_unusable", f"{path}: {exc}", path=str(path)) from exc
    for cert in certs:
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise _refuse(f"{kind}_unusable", f"{path}: {cert.subject.rfc4514_string()} "
                          "is not a CA certificate", path=str(path))
        if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
            raise _refuse(f"{kind}_expired", f"{path}: valid until "
                          f"{cert.not_valid_after_utc.isoformat()}", path=str(path))
        if "DEMO" in cert.subject.rfc4514_string().upper():
            raise _refuse(f"demo_{kind}", f"{path}: {cert.subject.rfc4514_string()}",
                          path=str(path))
    return pem


def load_gateway_ca(path: Path, *, now: datetime) -> str:
    """A PEM file of CA certificates, each currently valid and marked CA."""
    return _load_ca_pem(path, "gateway_ca", now=now)


CITY_CA_NAME = "city-ca.pem"  # agent/keystore/city_ca.CITY_CA_FILE: resources/trust/city-ca.pem


def load_city_ca(path: Path, *, now: datetime) -> str:
    """The city CA(s) that issue staff certificates: CA, valid now, not DEMO.

    The DEMO gateway CA (the one the shipped DEMO policy names) is refused here too: it is a
    DEMO certificate whatever its subject says.
    """
    pem = _load_ca_pem(path, "city_ca", now=now)
    if _fingerprints(pem) & demo_gateway_fingerprints():
        raise _refuse("demo_city_ca", f"{path}: the DEMO gateway CA", path=str(path))
    return pem


def load_helpdesk_key(path: Path) -> str:
    """An age X25519 recipient file (``age-keygen -y`` output; '#' comment lines allowed)."""
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="ascii").splitlines()]
    except (OSError, UnicodeError) as exc:
        raise _refuse("helpdesk_unusable", f"{path}: {exc}", path=str(path)) from exc
    keys = [ln for ln in lines if ln and not ln.startswith("#")]
    if len(keys) != 1:
        raise _refuse("helpdesk_unusable", f"{path}: {len(keys)} recipients, expected 1",
                      path=str(path))
    try:  # the same code that encrypts bundles must accept it
        encrypt_for(b"byod build-config probe", keys)
    except BundleError as exc:
        raise _refuse("helpdesk_unusable", f"{path}: {exc}", path=str(path)) from exc
    return keys[0]


def demo_gateway_fingerprints() -> set[str]:
    """SHA-256 of the DEMO gateway CA(s) the shipped DEMO policy names (renamed or not)."""
    from agent.policy.schema import parse_policy  # noqa: PLC0415

    out: set[str] = set()
    for path in (resources_dir() / "policy").glob("*.toml"):
        try:
            demo = parse_policy(path.read_bytes())
        except (OSError, PolicyRefused):
            continue
        for t in demo.targets:
            if t.gateway_ca_pem and is_demo_policy(demo):
                out |= _fingerprints(t.gateway_ca_pem)
    return out


def _cross_check(policy: Policy, gateway_ca: str | None, helpdesk: str | None) -> None:
    if is_demo_policy(policy):
        raise _refuse("demo_policy", f"policy id {policy.id!r} or a .invalid target host",
                      id=policy.id)
    for t in policy.targets:
        # The DEMO CA first: otherwise it surfaces as a mismatch with --gateway-ca (issue 16)
        if t.gateway_ca_pem:
            for cert in x509.load_pem_x509_certificates(t.gateway_ca_pem.encode("ascii")):
                if "DEMO" in cert.subject.rfc4514_string().upper() or \
                        _fingerprints(t.gateway_ca_pem) & demo_gateway_fingerprints():
                    raise _refuse("demo_gateway_ca_in_policy", f"target {t.id}: DEMO CA "
                                  f"{cert.subject.rfc4514_string()}", target=t.id)
        if gateway_ca is not None and t.mode == "tunnel" and t.gateway_ca_pem and \
                not _fingerprints(gateway_ca) & _fingerprints(t.gateway_ca_pem):
            raise _refuse("gateway_ca_mismatch", f"target {t.id} trusts another gateway CA",
                          target=t.id)
    policy_key = policy.diagnostics.helpdesk_public_key
    if helpdesk is not None and (policy_key or "").strip() != helpdesk:
        raise _refuse("helpdesk_mismatch", "the policy names another help-desk key (or none)")


@dataclass(frozen=True)
class BuildConfig:
    policy_id: str
    serial: int
    expires: str
    signer_key_id: str
    anchors: tuple[str, ...]  # key ids
    files: dict[str, str]  # relative path -> sha256
    warnings: tuple[Message, ...] = ()  # accepted, but IT must read them (printed loudly)

    def to_json(self) -> bytes:
        doc = {"format": FORMAT, "policy": {"id": self.policy_id, "serial": self.serial,
                                            "expires": self.expires,
                                            "signer_key_id": self.signer_key_id},
               "trust_key_ids": list(self.anchors), "files": dict(sorted(self.files.items()))}
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _check_policy(policy_path: Path, anchors: Sequence[signing.TrustAnchor], *,
                  now: datetime) -> tuple[Policy, signing.TrustAnchor]:
    data, sig = read_pair(policy_path)
    policy, signer = verify_policy(data, sig, anchors, now=now)
    if policy.expires - now < EXPIRY_MARGIN:
        raise _refuse("expires_soon", f"expires {policy.expires.isoformat()}",
                      expires=policy.expires.isoformat())
    return policy, signer


def load_managed(path: Path) -> bytes:
    """IT's managed settings (the TOML of /etc/byod-agent/managed.toml) as resources/managed.json;
    every key must be one the agent reads, with a usable value (agent/settings/managed.py)."""
    from agent.settings import managed  # noqa: PLC0415

    try:
        raw = managed.parse_toml(path.read_bytes())
    except (OSError, ValueError, UnicodeError) as exc:
        raise _refuse("managed_unusable", f"{path}: {exc}", path=str(path),
                      reason=str(exc)[:200]) from exc
    settings = {}
    for key, value in raw.items():
        good = managed.coerce(key, value)
        if good is None:
            raise _refuse("managed_unusable", f"{path}: {key}", path=str(path),
                          reason=f"{key} = {str(value)[:80]}")
        settings[key] = good
    doc = {"format": "byod-managed/1", "settings": settings}
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def load_update_root(path: Path, *, now: datetime) -> bytes:
    """A TUF root.json (byod-admin update-repo init), self-signed and not expired."""
    from tuf.api.metadata import Metadata, Root  # noqa: PLC0415

    try:
        data = path.read_bytes()
        md = Metadata[Root].from_bytes(data)
        if not isinstance(md.signed, Root):
            raise ValueError("not root metadata")
        md.signed.verify_delegate(Root.type, md.signed_bytes, md.signatures)
    except (OSError, ValueError, Exception) as exc:  # tuf raises its own error types
        raise _refuse("update_root_unusable", f"{path}: {exc}", path=str(path),
                      reason=str(exc)[:200]) from exc
    if md.signed.is_expired(now):
        raise _refuse("update_root_unusable", f"{path}: expired", path=str(path), reason="expired")
    return data


def make_config(policy_path: Path, trust: Sequence[Path], out: Path, *,
                gateway_ca: Path | None = None, helpdesk_key: Path | None = None,
                city_ca: Path | None = None, managed: Path | None = None,
                update_root: Path | None = None,
                release_keys: Sequence[Path] = (),
                now: datetime | None = None) -> BuildConfig:
    """Validate everything, then write ``out`` (which must not exist or be empty)."""
    now = now or datetime.now(UTC)
    if not trust:
        raise _refuse("no_trust", "no --trust file")
    anchors = [load_anchor(p) for p in trust]
    if len({a.key_id for a in anchors}) != len(anchors) or \
            len({a.name for a in anchors}) != len(anchors):
        raise _refuse("duplicate_trust", "two trust files hold the same key or name")
    policy, signer = _check_policy(policy_path, anchors, now=now)
    ca_pem = load_gateway_ca(gateway_ca, now=now) if gateway_ca else None
    helpdesk = load_helpdesk_key(helpdesk_key) if helpdesk_key else None
    city_pem = load_city_ca(city_ca, now=now) if city_ca else None
    _cross_check(policy, ca_pem, helpdesk)
    if out.exists() and any(out.iterdir()):
        raise _refuse("out_not_empty", str(out), path=str(out))
    files: dict[str, bytes] = {
        f"policy/{policy_path.name}": policy_path.read_bytes(),
        f"policy/{sig_path(policy_path).name}": sig_path(policy_path).read_bytes(),
    }
    for a in anchors:  # the normalized PEM, not whatever else the file held
        files[f"trust/{a.name}.pub"] = signing.public_key_pem(a.key)
    if ca_pem is not None:
        files["gateway-ca.pem"] = ca_pem.encode("ascii")
    if city_pem is not None:  # cert import and the bundle reader trust it (keystore/city_ca.py)
        files[f"trust/{CITY_CA_NAME}"] = city_pem.encode("ascii")
    if helpdesk is not None:
        files["helpdesk.age"] = (helpdesk + "\n").encode("ascii")
    if managed is not None:  # locked settings for PCs no MDM reaches (docs/it-guide.md)
        files["managed.json"] = load_managed(managed)
    if update_root is not None:  # the TUF root the agent trusts (byod-admin update-repo init)
        files["update/root.json"] = load_update_root(update_root, now=now)
    for pub in release_keys:  # the release key(s) the agent checks after TUF
        files[f"update/release-keys/{pub.stem}.pub"] = signing.public_key_pem(
            load_anchor(pub).key)
    config = BuildConfig(policy.id, policy.serial, policy.expires.isoformat(), signer.key_id,
                         tuple(a.key_id for a in anchors),
                         {k: hashlib.sha256(v).hexdigest() for k, v in files.items()},
                         warnings=() if policy.diagnostics.helpdesk_public_key else (
                             msg("buildconfig.warn.no_helpdesk_key", id=policy.id),))
    files[MANIFEST] = config.to_json()
    for rel, data in files.items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        os.chmod(target, 0o444)  # read-only from here to the installed copy
    return config


def check_config(directory: Path, *, now: datetime | None = None) -> BuildConfig:
    """Re-check a config directory at build time: hashes, signature, expiry, no DEMO."""
    now = now or datetime.now(UTC)
    try:
        doc = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        listed: dict[str, str] = dict(doc["files"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _refuse("not_a_config", f"{directory}: {exc}", path=str(directory)) from exc
    present = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}
    if present - {MANIFEST} != set(listed):
        raise _refuse("config_tampered", f"files differ: {sorted(present ^ set(listed))}",
                      path=str(directory))
    for rel, digest in listed.items():
        if hashlib.sha256((directory / rel).read_bytes()).hexdigest() != digest:
            raise _refuse("config_tampered", f"{rel} changed", path=rel)
    trust = sorted((directory / "trust").glob("*.pub"))
    policies = sorted((directory / "policy").glob("*.toml"))
    if len(policies) != 1:
        raise _refuse("not_a_config", f"{len(policies)} policies", path=str(directory))
    anchors = [load_anchor(p) for p in trust]
    policy, signer = _check_policy(policies[0], anchors, now=now)
    ca = directory / "gateway-ca.pem"
    hd = directory / "helpdesk.age"
    city = directory / "trust" / CITY_CA_NAME
    if city.exists():
        load_city_ca(city, now=now)
    _cross_check(policy, load_gateway_ca(ca, now=now) if ca.exists() else None,
                 load_helpdesk_key(hd) if hd.exists() else None)
    return BuildConfig(policy.id, policy.serial, policy.expires.isoformat(), signer.key_id,
                       tuple(a.key_id for a in anchors), listed)


def demo_findings(resources: Path, *, now: datetime | None = None) -> list[str]:
    """What in a built ``resources`` directory is DEMO (empty for a proper customized build).

    Run on the payload after it is laid out, so nothing added or left behind slips through.
    """
    now = now or datetime.now(UTC)
    found: list[str] = []
    anchors = []
    for path in sorted((resources / "trust").glob("*")):
        if path.name == CITY_CA_NAME:  # not a policy key: the city CA (--city-ca)
            try:
                load_city_ca(path, now=now)
            except ConfigRefused as exc:
                found.append(f"trust/{path.name}: city CA refused ({exc.detail})")
            continue
        try:
            key = signing.load_public_key(path.read_bytes())
        except (OSError, ValueError):
            found.append(f"trust/{path.name}: not a trust anchor")
            continue
        anchor = signing.TrustAnchor(path.stem, signing.key_id(key), key)
        anchors.append(anchor)
        if is_demo_anchor(anchor):
            found.append(f"trust/{path.name}: DEMO trust anchor {anchor.key_id}")
    for path in sorted((resources / "policy").glob("*")):
        if "demo" in path.name.lower():
            found.append(f"policy/{path.name}: DEMO file name")
        if path.suffix != ".toml":
            continue
        try:
            policy, _ = verify_policy(*read_pair(path), anchors, now=now)
        except PolicyRefused as exc:
            found.append(f"policy/{path.name}: refused ({exc.detail})")
            continue
        if is_demo_policy(policy):
            found.append(f"policy/{path.name}: DEMO policy {policy.id}")
    return found

