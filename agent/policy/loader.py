"""Load a policy file with its signature, verify everything, and choose the policy in force.

Order of checks: size, signature (before any parsing, so the TOML reader only ever sees bytes a
trusted key signed), UTF-8, TOML, schema, validity window, rollback. The policy in force is the
installed one (resources/policy/, signed into the installer) unless a last good copy in the
state directory (a fetched update, kept per trust anchor and id) has the same anchor and id and a
higher serial, or the installed one is refused; then the newest kept copy stays in force until it
expires. docs/policy.md has the whole state machine.
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
from agent.policy.model import LoadedPolicy, Policy, UpdateSource
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
                                       highest_serial=lambda pid: state.highest_serial(
                                           pid, verify(data, sig, anchors).key_id))
    except PolicyRefused as exc:
        remember_refusal(state, Refusal(_iso(now), source, str(path), exc.message, exc.detail))
        raise
    _remember(state, policy, anchor)
    return loaded_policy(policy, anchor, data, source, str(path))


def _remember(state: PolicyState, policy: Policy, anchor: TrustAnchor | None = None) -> None:
    try:
        state.record_accepted(policy.id, policy.serial, anchor.key_id if anchor else "")
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
    # The update server to ask, from the policy in force or, with none in force, from the
    # newest installed (then kept) policy whose signature verifies even if it expired or was
    # rolled back: a signed URL and CA are safe to use, what they deliver is verified anyway.
    update: UpdateSource | None = None


@dataclass
class _Candidate:
    source: str
    path: Path
    data: bytes = b""
    sig: bytes = b""
    policy: Policy | None = None
    anchor: TrustAnchor | None = None
    error: PolicyRefused | None = None
    signed: Policy | None = None  # parsed after the signature verified (may be expired)
    signed_by: TrustAnchor | None = None


def _serial(c: _Candidate) -> int:
    return c.policy.serial if c.policy else 0


def _demo(c: _Candidate) -> bool:
    return bool((c.anchor and c.anchor.demo) or (c.policy and "demo" in c.policy.id.lower()))


def _scope(c: _Candidate) -> tuple[str, str]:
    pol = c.policy or c.signed
    anchor = c.anchor or c.signed_by
    return (anchor.key_id if anchor else "", pol.id if pol else "")


def _examine(c: _Candidate, anchors: Sequence[TrustAnchor], now: datetime) -> None:
    try:
        c.data, c.sig = read_pair(c.path)
        c.policy, c.anchor = verify_policy(c.data, c.sig, anchors, now=now)
    except PolicyRefused as exc:
        c.error = exc
        if c.data and c.sig:  # signed but out of its window: its [update] is still usable
            with contextlib.suppress(PolicyRefused):
                c.signed_by = verify(c.data, c.sig, anchors)
                c.signed = parse_policy(c.data)
    else:
        c.signed, c.signed_by = c.policy, c.anchor


def resolve_active(state: PolicyState, anchors: Sequence[TrustAnchor], *, now: datetime,
                   installed: Path | None = None) -> Resolution:
    """The policy in force now, and why any other candidate was refused.

    The state machine is in docs/policy.md ("Which policy is in force"): the highest serial of
    the installed policy's (anchor, id) among the installed files and the kept copies; else the
    newest kept copy of a trusted anchor; a DEMO one never while a non-DEMO one is valid; never
    one below the serial already accepted for its (anchor, id).
    """
    directory = installed or installed_dir()
    cands = [_Candidate("installed", p) for p in sorted(directory.glob("*.toml"))]
    trusted = {a.key_id for a in anchors}
    # Copies kept for another build's anchors (a DEMO build run once) are not ours to judge.
    cands += [_Candidate("cache", p) for p in state.cached_copies(trusted)]
    for c in cands:
        _examine(c, anchors, now)
    legacy = [c for c in cands if c.path == state.legacy_cache and c.error is not None
              and c.error.reason in ("unknown_signer", "no_trust_anchor")]
    cands = [c for c in cands if c not in legacy]  # an old shared copy of another build's
    out = Resolution(None)
    try:
        highest = {_scope(c): state.highest_serial(_scope(c)[1], _scope(c)[0])
                   for c in cands if c.policy is not None}
    except PolicyRefused as exc:  # the serial table is unreadable: fail closed
        highest = {}
        for c in cands:
            if c.policy is not None:
                c.error, c.policy = exc, None
    for c in cands:
        if c.policy is not None and c.policy.serial < highest.get(_scope(c), 0):
            pol = c.policy
            c.error = PolicyRefused(
                msg("policy.refused.rollback", serial=pol.serial,
                    highest=highest[_scope(c)], id=pol.id),
                f"serial {pol.serial} < {highest[_scope(c)]} already accepted")
            c.policy = None
    valid = [c for c in cands if c.policy is not None]
    if any(not _demo(c) for c in valid):
        valid = [c for c in valid if not _demo(c)]  # DEMO never replaces a city policy
    home = {_scope(c) for c in cands if c.source == "installed" and c.signed is not None}
    mine = [c for c in valid if _scope(c) in home]
    if not mine and home:  # the installed line lapsed: nothing issued before it takes over
        newest = max(c.signed.not_before for c in cands
                     if c.signed is not None and _scope(c) in home)
        valid = [c for c in valid if c.policy is not None and c.policy.not_before >= newest]
    chosen = max(mine or valid, key=lambda c: (_serial(c), c.source == "installed"),
                 default=None)
    for c in cands:
        superseded = c.error is not None and c.error.reason == "rollback" and any(
            _scope(v) == _scope(c) for v in valid)  # an update replaced it: expected, not news
        if c.error is not None and not superseded:
            refusal = Refusal(_iso(now), c.source, str(c.path), c.error.message, c.error.detail)
            out.refused.append(refusal)
            remember_refusal(state, refusal)
    signed = [c for c in cands if c.signed is not None and c.signed.update is not None
              and not (c.signed_by and c.signed_by.demo and any(not _demo(v) for v in valid))]
    if chosen is None or chosen.policy is None or chosen.anchor is None:
        best = max(signed, key=lambda c: (c.source == "installed", c.signed.serial
                                          if c.signed else 0), default=None)
        out.update = best.signed.update if best is not None and best.signed else None
        return out
    out.update = chosen.policy.update
    _remember(state, chosen.policy, chosen.anchor)
    try:
        state.store_last_good(chosen.data, chosen.sig, chosen.anchor.key_id, chosen.policy.id)
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
