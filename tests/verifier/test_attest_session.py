"""The session side of the verifier as plain functions: re-check = local decision + re-attest."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from agent.attest import VerifierError
from agent.attest.session import reevaluator, refusal_decision
from agent.core import i18n
from agent.policy.decision import Decision, Outcome, reasons_both


@dataclass
class FakeEvaluation:
    decision: Decision


def local(allowed: bool = True) -> Decision:
    return Decision(allowed, "ABCDEFGH", "city", 3, dt.datetime.now(dt.UTC), ())


class Attester:
    def __init__(self, error: VerifierError | None = None) -> None:
        self.calls = 0
        self.error = error

    def attest(self, _report: Any) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error


def no_payload(_evaluation: Any) -> dict[str, Any]:
    return {}


def test_an_allowed_recheck_reattests_and_stays_allowed() -> None:
    att = Attester()
    again = reevaluator(lambda: FakeEvaluation(local()), att,  # type: ignore[arg-type]
                        payload=no_payload)
    assert again().allowed and att.calls == 1


def test_a_locally_blocked_recheck_does_not_ask_the_verifier() -> None:
    att = Attester()
    again = reevaluator(lambda: FakeEvaluation(local(False)), att)  # type: ignore[arg-type]
    assert not again().allowed and att.calls == 0


def test_a_refusal_or_an_unreachable_verifier_blocks_with_a_reason() -> None:
    for exc, key in ((VerifierError("not_compliant", "ja", "en", "HTTP 403", status=403),
                      "verifier.refused.not_compliant"),
                     (VerifierError("unreachable", "ja", "en", "ConnectionRefusedError"),
                      "verifier.error.unreachable")):
        decision = reevaluator(lambda: FakeEvaluation(local()),  # type: ignore[arg-type]
                               Attester(exc), payload=no_payload)()  # type: ignore[arg-type]
        assert not decision.allowed
        last = decision.checks[-1]
        assert (last.id, last.outcome) == ("verifier", Outcome.BLOCK)
        assert last.reason is not None and last.reason.key == key
        texts = reasons_both(decision)[-1]
        assert texts["ja"] == i18n.text(key, "ja", detail=exc.detail[:120])
        assert texts["ja"] != key and texts["en"] != key  # translated, not a raw key


def test_refusal_keeps_the_local_correlation_id() -> None:
    exc = VerifierError("stale_serial", "ja", "en", "HTTP 409", status=409)
    d = refusal_decision(local(), exc)
    assert d.correlation_id == "ABCDEFGH" and d.serial == 3
