"""Load a policy file with its signature, verify everything, and choose the policy in force.

Order of checks: size, signature (before any parsing, so the TOML reader only ever sees bytes a
trusted key signed), UTF-8, TOML, schema, validity window, rollback. The policy in force is the
installed one (resources/policy/, signed into the installer) unless the last good copy in the
state directory (a fetched update) has the same id and a higher serial, or the installed one is
refused; then the last good copy stays in force until it expires.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from agent.core.messages import msg
from agent.core.paths import resources_dir
from agent.policy.errors import PolicyRefused
from agent.policy.model import LoadedPolicy, Policy
from agent.policy.schema import MAX_POLICY_BYTES, parse_policy
from agent.policy.signing import TrustAnchor, verify
from agent.policy.state import PolicyState, Refusal

log = logging.getLogger(__name__)


def installed_dir() -> Path:
    return resources_dir() / "policy"


def sig_path(policy_path: Path) -> Path:
    return policy_path.with_name(policy_path.name + ".sig")


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def verify_policy(data: bytes, sig: bytes, anchors: Sequence[TrustAnchor], *, now: datetime,
                  highest_serial: Callable[[str], int] | None = None
                  ) -> tuple[Policy, TrustAnchor]:
    """Every check a policy must pass, on bytes already in memory. Pure apart from the clock."""
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyRefused(msg("policy.refused.too_large", size=len(data),
                                limit=MAX_POLICY_BYTES), f"{len(data)} bytes")
    anchor = verify(data, sig, anchors)
    policy = parse_policy(data)
    if now < policy.not_before:
        raise PolicyRefused(msg("policy.refused.not_yet_valid", not_before=_iso(policy.not_before)),
                            f"valid from {_iso(policy.not_before)}")
    if now >= policy.expires:
        raise PolicyRefused(msg("policy.refused.expired", expires=_iso(policy.expires)),
                            f"expired {_iso(policy.expires)}")
    highest = highest_serial(policy.id) if highest_serial is not None else 0
    if policy.serial < highest:
        raise PolicyRefused(msg("policy.refused.rollback", serial=policy.serial,
                                highest=highest, id=policy.id),
                            f"serial {policy.serial} < {highest} already accepted")
    return policy, anchor


def _read_capped(path: Path, limit: int, *, sig: bool) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(limit + 1)  # one byte over the limit is enough to refuse
    except OSError as exc:
        key = "policy.refused.sig_missing" if sig else "policy.refused.unreadable"
        raise PolicyRefused(msg(key, path=str(path), detail=exc.strerror or type(exc).__name__),
                            f"{path}: {exc}") from exc


def read_pair(path: Path) -> tuple[bytes, bytes]:
    return (_read_capped(path, MAX_POLICY_BYTES, sig=False),
            _read_capped(sig_path(path), 4096, sig=True))


def loaded_policy(policy: Policy, anchor: TrustAnchor, data: bytes, source: str,
            where: str) -> LoadedPolicy:
    return LoadedPolicy(policy, source, where, hashlib.sha256(data).hexdigest(), anchor.key_id,
                        anchor.name, anchor.demo or "demo" in policy.id.lower())


def load_file(path: Path, anchors: Sequence[TrustAnchor], state: PolicyState, *,
              now: datetime, source: str = "file") -> LoadedPolicy:
    """One policy file; accepted -> its serial is remembered; refused -> the refusal is."""
    try:
        data, sig = read_pair(path)
        policy, anchor = verify_policy(data, sig, anchors, now=now,
                                       highest_serial=state.highest_serial)
    except PolicyRefused as exc:
        remember_refusal(state, Refusal(_iso(now), source, str(path), exc.message, exc.detail))
        raise
    _remember(state, policy)
    return loaded_policy(policy, anchor, data, source, str(path))


def _remember(state: PolicyState, policy: Policy) -> None:
    try:
        state.record_accepted(policy.id, policy.serial)
    except OSError as exc:  # a read-only profile must not stop the check
        log.warning("cannot record policy serial: %s", exc)


def remember_refusal(state: PolicyState, refusal: Refusal) -> None:
    log.warning("policy refused (%s %s): %s", refusal.source, refusal.path, refusal.detail)
    with contextlib.suppress(OSError, PolicyRefused):
        last = state.refusals()[:1]
        if last and (last[0].path, last[0].message, last[0].detail) == (
                refusal.path, refusal.message, refusal.detail):
            return  # the same refusal on every check run is recorded once
        state.record_refusal(refusal)


@dataclass
class Resolution:
    loaded: LoadedPolicy | None
    refused: list[Refusal] = field(default_factory=list)


@dataclass
class _Candidate:
    source: str
    path: Path
    data: bytes = b""
    sig: bytes = b""
    policy: Policy | None = None
    anchor: TrustAnchor | None = None
    error: PolicyRefused | None = None


def _serial(c: _Candidate) -> int:
    return c.policy.serial if c.policy else 0


def _id(c: _Candidate) -> str:
    return c.policy.id if c.policy else ""


def resolve_active(state: PolicyState, anchors: Sequence[TrustAnchor], *, now: datetime,
                   installed: Path | None = None) -> Resolution:
    """The policy in force now, and why any other candidate was refused."""
    directory = installed or installed_dir()
    cands = [_Candidate("installed", p) for p in sorted(directory.glob("*.toml"))]
    if state.cache_policy.is_file():
        cands.append(_Candidate("cache", state.cache_policy))
    for c in cands:
        try:
            c.data, c.sig = read_pair(c.path)
            c.policy, c.anchor = verify_policy(c.data, c.sig, anchors, now=now)
        except PolicyRefused as exc:
            c.error = exc
    valid = [c for c in cands if c.policy is not None]
    installed_ok = [c for c in valid if c.source == "installed"]
    chosen = max(installed_ok, key=_serial, default=None)
    cached = next((c for c in valid if c.source == "cache"), None)
    if cached is not None and (chosen is None or (
            _id(cached) == _id(chosen) and _serial(cached) > _serial(chosen))):
        chosen = cached
    if chosen is not None and chosen.policy is not None:  # rollback against accepted serials
        pol = chosen.policy
        try:
            highest = state.highest_serial(pol.id)
        except PolicyRefused as exc:
            chosen.error, chosen = exc, None
        else:
            if pol.serial < highest:
                chosen.error = PolicyRefused(
                    msg("policy.refused.rollback", serial=pol.serial, highest=highest, id=pol.id),
                    f"serial {pol.serial} < {highest} already accepted")
                chosen = None
    out = Resolution(None)
    for c in cands:
        if c.error is not None:
            refusal = Refusal(_iso(now), c.source, str(c.path), c.error.message, c.error.detail)
            out.refused.append(refusal)
            remember_refusal(state, refusal)
    if chosen is None or chosen.policy is None or chosen.anchor is None:
        return out
    _remember(state, chosen.policy)
    if chosen.source != "cache":
        try:
            state.store_last_good(chosen.data, chosen.sig)
        except OSError as exc:
            log.warning("cannot keep a copy of the policy: %s", exc)
    out.loaded = loaded_policy(chosen.policy, chosen.anchor, chosen.data, chosen.source,
                         str(chosen.path))
    return out


def refusal_error(resolution: Resolution) -> PolicyRefused:
    """The error to report when no policy is in force."""
    if resolution.refused:
        first = resolution.refused[0]
        return PolicyRefused(first.message, first.detail)
    return PolicyRefused(msg("policy.refused.none_installed", path=str(installed_dir())),
                         "no policy installed")


def policy_in_force(state: PolicyState, anchors: Sequence[TrustAnchor], *, now: datetime,
                    path: Path | None = None, installed: Path | None = None) -> LoadedPolicy:
    """The policy a check uses: the file given (``check --policy``) or the one in force."""
    if path is not None:
        return load_file(path, anchors, state, now=now, source="file")
    resolution = resolve_active(state, anchors, now=now, installed=installed)
    if resolution.loaded is None:
        raise refusal_error(resolution)
    return resolution.loaded
