"""The export as every front end runs it (``diag export``, the tray's consent dialog).

Three steps so a window can show the exact files before anything is written:
``collect()`` (slow: posture, decision, connectivity; run it off the UI thread), ``preview()``
(fast: redaction for a level and ticket, repeatable while the user decides), ``save()`` (sign,
encrypt to the help desk, write atomically, keep the pseudonym mapping encrypted on this PC).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.core import i18n, logsetup, paths
from agent.core.messages import Message, msg
from agent.diagnostics import bundle as bundle_mod
from agent.diagnostics import connectivity
from agent.diagnostics.identity import local_identities
from agent.diagnostics.mapping import RETENTION_DAYS, MappingError, MappingStore, reverse
from agent.diagnostics.redact import Redactor
from agent.diagnostics.signer import device_signer
from agent.keystore import Identity, Keystore, KeystoreError
from agent.policy.decision import decision_to_json, policy_to_json
from agent.policy.errors import PolicyRefused
from agent.policy.evaluate import Evaluation, evaluate
from agent.policy.loader import policy_in_force
from agent.policy.model import LoadedPolicy
from agent.policy.signing import load_trust_anchors
from agent.policy.state import PolicyState
from agent.posture.context import default_context
from agent.posture.engine import run_posture, utc_now
from agent.posture.model import Report
from agent.presentation import last_evaluation

log = logging.getLogger("agent.diagnostics")
# \A...\Z, not ^...$: "$" also matches before a trailing newline ("ABC-1\n" must not pass).
TICKET = re.compile(r"\A[A-Za-z0-9._-]{1,40}\Z")
LEVELS = ("standard", "strict")


@dataclass
class Collected:
    """What this PC says about itself right now, before redaction."""

    report: Report
    extra: dict[str, Any]
    recipients: list[str]  # age recipients of the help desk (empty: not encrypted)
    cap_bytes: int
    policy_id: str | None
    log_files: list[Path]
    users: list[str]
    hosts: list[str]


@dataclass
class Prepared:
    preview: bundle_mod.Preview
    mapping: dict[str, str]  # pseudonym -> original: stays on this PC
    recipients: list[str]
    encrypted: bool = field(init=False)

    def __post_init__(self) -> None:
        self.encrypted = bool(self.recipients)

    def file_name(self) -> str:
        return bundle_mod.file_name(self.preview, self.encrypted)


@dataclass(frozen=True)
class Saved:
    path: Path
    bundle_id: str
    mapping_path: Path | None
    mapping_problem: Message | None  # why the mapping could not be kept


def _identity() -> tuple[Identity | None, str | None]:
    try:
        return Keystore.default().load_identity(), None
    except (KeystoreError, OSError, ValueError) as exc:
        state = getattr(exc, "state", None)
        return None, str(state.value) if state is not None else type(exc).__name__


def _policy_in_force() -> LoadedPolicy | None:
    """The policy in force, without an update (cheap: a signature check); None when refused."""
    try:
        return policy_in_force(PolicyState(paths.state_dir()), load_trust_anchors(),
                               now=utc_now())
    except (PolicyRefused, OSError) as exc:
        log.info("no policy in force for reuse: %s", type(exc).__name__)
        return None


def reusable(*, in_force: Callable[[], LoadedPolicy | None] = _policy_in_force,
             last_path: Path | None = None,
             now: datetime | None = None) -> tuple[LoadedPolicy, last_evaluation.Saved] | None:
    """The tray's last evaluation when it may stand for a new one: at most
    ``last_evaluation.MAX_AGE`` old, this agent version, the policy now in force (docs/tray.md)."""
    loaded = in_force()
    if loaded is None:
        return None
    key = last_evaluation.PolicyKey(loaded.policy.id, loaded.policy.serial, loaded.sha256)
    saved = last_evaluation.load_fresh(key, path=last_path, now=now)
    return None if saved is None else (loaded, saved)


def collect(*, connectivity_timeout: float = connectivity.DEFAULT_TIMEOUT_S,
            identity: Callable[[], tuple[Identity | None, str | None]] = _identity,
            reuse: Callable[[], tuple[LoadedPolicy, last_evaluation.Saved] | None] = reusable,
            evaluate_fn: Callable[[], Evaluation] = evaluate) -> Collected:
    """Posture, decision, policy metadata and connectivity. A refused policy still yields a
    bundle (that is exactly when the help desk is needed), with the refusal reason inside.

    The posture and decision are the tray's last evaluation when ``reuse`` finds a fresh one
    under the policy in force (its ``generated_at``/``decided_at`` say when), else a new run."""
    extra: dict[str, Any] = {}
    users, hosts = local_identities()
    logs = logsetup.log_files()
    reused = reuse()
    if reused is not None:
        loaded, saved = reused
        report = saved.report
        extra["decision"] = saved.decision
        extra["correlation_id"] = saved.decision.get("correlation_id")
        log.info("export reuses the evaluation saved at %s", saved.saved_at.isoformat())
    else:
        try:
            result = evaluate_fn()
        except PolicyRefused as exc:
            extra["policy"] = {"status": "refused", "reason": i18n.both(exc.message),
                               "detail": exc.detail}
            return Collected(run_posture(default_context()), extra, [],
                             bundle_mod.DEFAULT_CAP_BYTES, None, logs, users, hosts)
        loaded, report = result.loaded, result.report
        extra["decision"] = decision_to_json(result.decision)
        extra["correlation_id"] = result.decision.correlation_id
    extra["policy"] = policy_to_json(loaded)
    policy = loaded.policy
    if policy.targets:
        ident, note = identity()
        extra["connectivity"] = connectivity.check_targets(
            policy.targets, connectivity.tunnel_context_factory(ident),
            with_cert=ident is not None, certificate_note=note, timeout=connectivity_timeout)
    key = policy.diagnostics.helpdesk_public_key
    recipients = [key] if key and key.startswith("age1") else []
    return Collected(report, extra, recipients, policy.diagnostics.max_bundle_bytes,
                     policy.id, logs, users, hosts)


def preview(collected: Collected, *, level: str = "standard", ticket: str | None = None,
            bundle_id: str | None = None) -> Prepared:
    """Redact for this level and ticket. Raises BundleError (bad level or ticket, over the cap)."""
    if ticket is not None and not TICKET.match(ticket):
        raise bundle_mod.BundleError(f"invalid ticket number {ticket[:40]!r}")
    redactor = Redactor(user_names=collected.users, host_names=collected.hosts)
    pre = bundle_mod.prepare(collected.report, redactor, level=level, ticket=ticket,
                             log_files=collected.log_files, extra=collected.extra,
                             cap_bytes=collected.cap_bytes, bundle_id=bundle_id)
    return Prepared(pre, reverse(redactor.mapping), collected.recipients)


def consent_text(collected: Collected, lang: str) -> str:
    """Purpose, recipient, retention: what the user agrees to."""
    recipient = i18n.text("diag.consent.recipient.encrypted" if collected.recipients
                          else "diag.consent.recipient.plain", lang)
    return i18n.text("diag.consent.text", lang, recipient=recipient, days=RETENTION_DAYS)


def target_path(prepared: Prepared, out: Path) -> Path:
    return out / prepared.file_name() if out.is_dir() else out


def save(prepared: Prepared, out: Path, *, sign: bool = True,
         signer: bundle_mod.Signer | None = None, store: MappingStore | None = None) -> Saved:
    """Write the bundle (all or nothing), then keep its mapping encrypted on this PC.

    ``sign`` uses ``signer``, else the enrolled device key when there is one. Raises BundleError or
    OSError for the bundle itself; a mapping that cannot be kept is reported, not raised (the
    bundle is what the user asked for; without the mapping only the look-up is lost).
    """
    chosen = (signer or device_signer()) if sign else None
    data = bundle_mod.build_zip(prepared.preview, chosen)
    if prepared.recipients:
        data = bundle_mod.encrypt_for(data, prepared.recipients)
    path = target_path(prepared, out)
    bundle_mod.write_atomic(path, data)
    store = store or MappingStore()
    store.purge()
    mapping_path = None
    problem = None
    if prepared.mapping:
        created = datetime.fromisoformat(prepared.preview.created_at.replace("Z", "+00:00"))
        try:
            mapping_path = store.store(prepared.preview.bundle_id, created, prepared.mapping)
        except KeystoreError as exc:
            problem = exc.message
            log.warning("pseudonym mapping not kept: %s", exc.state.value)
        except (MappingError, OSError) as exc:
            problem = msg("diag.mapping.not_kept")
            log.warning("pseudonym mapping not kept: %s", type(exc).__name__)
    return Saved(path, prepared.preview.bundle_id, mapping_path, problem)
