"""The worker side of one tray evaluation: posture checks under the signed policy, the certificate's
expiry, both turned into the one ``EvaluationResult`` the tray reads (agent/presentation/
evaluation.py). Run by ``byod-agent evaluate --wire`` in a short-lived process, so the policy,
posture, keystore, cryptography and keyring code never stays in the tray's memory.

The worker always answers with a message when it can: a refused policy or a broken run becomes the
error view in every language (never a pass), logged with its traceback in the agent's log only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from agent.core import i18n
from agent.core.errors import AgentError
from agent.presentation.evaluation import CertExpiry, EvaluationResult
from agent.presentation.status_view import PolicyEvaluator, build, failed

if TYPE_CHECKING:
    from agent.keystore.store import CertStatus
    from agent.policy.evaluate import Evaluation

log = logging.getLogger(__name__)
CERT_TIMEOUT_S = 10.0  # the keyring may prompt or hang: the posture answer must not wait for it

CertFn = Callable[[], "CertStatus"]


def _default_cert_status() -> CertStatus:
    from agent.keystore import Keystore  # noqa: PLC0415

    return Keystore.default().status()


def read_cert(cert_status: CertFn,
              timeout_s: float = CERT_TIMEOUT_S) -> tuple[bool, CertExpiry | None]:
    """(read, warning): the certificate's expiry warning, or (False, None) when the keystore did
    not answer in time or failed (logged; the tray then says nothing about expiry this time)."""
    box: list[CertStatus] = []
    err: list[BaseException] = []

    def ask() -> None:
        try:
            box.append(cert_status())
        except Exception as exc:  # logged below; never reaches a person
            err.append(exc)

    t = threading.Thread(target=ask, name="cert-status", daemon=True)
    t.start()
    t.join(timeout_s)
    if not box:
        log.warning("certificate status not read: %s",
                    f"{type(err[0]).__name__}: {err[0]}" if err else f"no answer in {timeout_s} s")
        return False, None
    w = box[0].warning
    return True, None if w is None else CertExpiry(w.threshold, w.days_left)


def _remember(remember: Callable[[Evaluation], None], last: Evaluation | None) -> None:
    if last is None:
        return
    try:
        remember(last)
    except Exception:  # saving for the export must never change what the tray shows
        log.exception("last evaluation not saved")


def evaluate_once(evaluator: PolicyEvaluator | None = None, *,
                  started_at: datetime | None = None,
                  cert_status: CertFn | None = None,
                  cert_timeout_s: float = CERT_TIMEOUT_S,
                  remember: Callable[[Evaluation], None] | None = None) -> EvaluationResult:
    """One evaluation as the tray shows it, in every language. ``remember``: given the
    evaluation when the policy decided (``evaluate --wire`` saves it for the export:
    agent/presentation/last_evaluation.py); never a refused or broken run."""
    evaluator = evaluator or PolicyEvaluator(started_at=started_at)
    try:
        report = evaluator.run()
        decision = evaluator.decide(report)
        views = {lang: build(report, lang, decision) for lang in i18n.LANGS}
        if remember is not None and decision is not None:
            _remember(remember, getattr(evaluator, "last", None))  # test doubles have none
    except AgentError as exc:  # a refused policy: its own words, in each language
        log.warning("evaluation refused: %s", exc.detail)
        views = {lang: failed(lang, i18n.render(exc.message, lang)) for lang in i18n.LANGS}
    except Exception as exc:  # the run itself broke: the error state, never a pass
        log.exception("evaluation failed")
        views = {lang: failed(lang, f"{type(exc).__name__}: {exc}") for lang in i18n.LANGS}
    read, warning = read_cert(cert_status or _default_cert_status, cert_timeout_s)
    return EvaluationResult(views, cert_read=read, cert_warning=warning)
