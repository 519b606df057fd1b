"""The evaluation worker's one message (agent/presentation/evaluation.py): what the worker writes
the tray reads back field for field; anything malformed is refused; a refused policy or a broken
run is the error state in every language (never a pass); the real ``byod-agent evaluate --wire``
prints exactly one readable line; and the wire module loads no policy, posture or keystore code.

Reports here are built from the real models (agent/posture/model.py), as tests/unit/
test_statusview.py builds them; the real command runs this machine's real checks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from agent.core import i18n
from agent.core.messages import msg
from agent.keystore.certs import ExpiryWarning
from agent.policy.errors import PolicyRefused
from agent.posture.model import CheckResult, HostInfo, Report, Status
from agent.presentation.evaluate_worker import evaluate_once, read_cert
from agent.presentation.evaluation import (
    MAX_WIRE_BYTES,
    CertExpiry,
    EvaluationResult,
    WireError,
)
from agent.presentation.status_view import (
    CheckVerdict,
    DecisionInfo,
    Effect,
    TargetInfo,
    TrayState,
    build,
    failed,
)

REPO = Path(__file__).resolve().parents[2]


def _report() -> Report:
    checks = (
        CheckResult("os_supported", Status.PASS, msg("probe.unsupported", what="x"),
                    {"build": 22631, "nested": {"list": [1, "二"]}}, None, 3),
        CheckResult("disk_encryption", Status.FAIL, msg("probe.unsupported", what="y"),
                    {"device": "/dev/vda"}, "disk_encryption", 12),
        CheckResult("firewall", Status.UNKNOWN, msg("probe.unsupported", what="z"), {},
                    "firewall.unknown", 7),
    )
    return Report("2026-11-27T12:00:00Z", HostInfo("windows", "11", "pc", "x86_64"), checks)


def _decision() -> DecisionInfo:
    return DecisionInfo(
        allowed=False, correlation_id="K7Q2-9XPM",
        verdicts={"os_supported": CheckVerdict(Effect.OK),
                  "disk_encryption": CheckVerdict(Effect.STAGED, date(2027, 1, 1)),
                  "firewall": CheckVerdict(Effect.BLOCK)},
        policy_id="city-2026", recheck_minutes=20,
        targets=(TargetInfo("office-pc", "庁内PC", "Office PC"),))


def _result(**kw: Any) -> EvaluationResult:
    views = {lang: build(_report(), lang, _decision()) for lang in i18n.LANGS}
    return EvaluationResult(views, **kw)


def test_round_trip_keeps_every_field_in_every_language() -> None:
    sent = _result(cert_read=True, cert_warning=CertExpiry(7, 5))
    line = sent.to_wire()
    assert "\n" not in line
    got = EvaluationResult.from_wire(line.encode())
    assert got == sent  # dataclass equality: every field of every view, row and target
    assert got.view("ja").rows[0].name != got.view("en").rows[0].name  # really two languages
    assert got.view("en").state is TrayState.BLOCKED
    assert got.view("en").correlation_id == "K7Q2-9XPM" and got.view("en").recheck_minutes == 20
    assert got.view("ja").targets[0].name == "庁内PC"
    assert got.view("xx") == got.view(i18n.LANGS[0])  # an unknown language falls back


def test_error_views_and_no_certificate_round_trip() -> None:
    views = {lang: failed(lang, "理由 reason") for lang in i18n.LANGS}
    sent = EvaluationResult(views)
    got = EvaluationResult.from_wire(sent.to_wire())
    assert got == sent and not got.cert_read and got.cert_warning is None
    assert got.view("ja").state is TrayState.ERROR and not got.view("ja").connect_allowed


def _doc() -> dict[str, Any]:
    return dict(json.loads(_result().to_wire()))


def _mutations() -> list[tuple[str, Any]]:
    def with_(path: tuple[Any, ...], value: Any, drop: bool = False) -> dict[str, Any]:
        d = _doc()
        node: Any = d
        for p in path[:-1]:
            node = node[p]
        if drop:
            del node[path[-1]]
        else:
            node[path[-1]] = value
        return d

    return [
        ("unknown top key", with_(("extra",), 1)),
        ("schema 2", with_(("schema",), 2)),
        ("another kind", with_(("kind",), "session")),
        ("a language missing", with_(("views", "en"), None, drop=True)),
        ("a foreign language", with_(("views", "fr"), _doc()["views"]["en"])),
        ("unknown state", with_(("views", "en", "state"), "fine")),
        ("compliant as a string", with_(("views", "en", "connect_allowed"), "true")),
        ("row field missing", with_(("views", "ja", "rows", 0, "status"), None, drop=True)),
        ("row unknown status", with_(("views", "ja", "rows", 0, "status"), "ok")),
        ("row unknown field", with_(("views", "ja", "rows", 0, "secret"), "x")),
        ("duration as float", with_(("views", "ja", "rows", 0, "duration_ms"), 1.5)),
        ("duration as bool", with_(("views", "ja", "rows", 0, "duration_ms"), True)),
        ("steps not strings", with_(("views", "ja", "rows", 0, "fix_steps"), [1])),
        ("evidence a list", with_(("views", "ja", "rows", 0, "evidence"), [])),
        ("target without name", with_(("views", "en", "targets", 0, "name"), None, drop=True)),
        ("huge string", with_(("views", "en", "headline"), "x" * 70_000)),
        ("cert read as int", with_(("cert", "read"), 1)),
        ("cert warning odd", with_(("cert", "warning"), {"threshold": 7})),
    ]


@pytest.mark.parametrize(("what", "doc"), _mutations(), ids=[m[0] for m in _mutations()])
def test_malformed_messages_are_refused(what: str, doc: dict[str, Any]) -> None:
    with pytest.raises(WireError):
        EvaluationResult.from_wire(json.dumps(doc))


@pytest.mark.parametrize("raw", [
    b"", b"\n\n", b"not json", b"[1, 2]", b"\xff\xfe", b"null",
    (json.dumps(_doc()) + "\n" + json.dumps(_doc())).encode(),  # two messages
    b"[" * 100_000,  # nesting bomb
    b" " * (MAX_WIRE_BYTES + 1),
], ids=["empty", "blank", "text", "list", "not-utf8", "null", "two-lines", "nesting", "huge"])
def test_garbage_is_refused(raw: bytes) -> None:
    with pytest.raises(WireError):
        EvaluationResult.from_wire(raw)


class _Evaluator:
    def __init__(self, exc: Exception | None = None) -> None:
        self.exc = exc

    def run(self) -> Report:
        if self.exc is not None:
            raise self.exc
        return _report()

    def decide(self, report: Report) -> DecisionInfo | None:
        return _decision()


def _no_cert() -> Any:
    raise OSError("no keyring here")


def test_a_refused_policy_is_the_error_state_in_its_own_words() -> None:
    refused = PolicyRefused(msg("policy.refused.expired", expires="2026-01-01"), "expired")
    r = evaluate_once(_Evaluator(refused), cert_status=_no_cert)  # type: ignore[arg-type]
    for lang in i18n.LANGS:
        v = r.view(lang)
        assert v.state is TrayState.ERROR and not v.connect_allowed
        assert v.error == i18n.render(refused.message, lang)
    assert not r.cert_read  # the keystore failed: said in the log, nothing invented


def test_a_crashing_run_is_the_error_state_never_a_pass() -> None:
    r = evaluate_once(_Evaluator(RuntimeError("probe exploded")),  # type: ignore[arg-type]
                      cert_status=_no_cert)
    assert {r.view(lang).state for lang in i18n.LANGS} == {TrayState.ERROR}
    assert "RuntimeError: probe exploded" in (r.view("en").error or "")


def test_an_evaluation_carries_the_decision_and_the_certificate_warning() -> None:
    class _Status:
        warning = ExpiryWarning(7, 6)

    r = evaluate_once(_Evaluator(), cert_status=_Status)  # type: ignore[arg-type]
    assert r.view("en") == build(_report(), "en", _decision())
    assert r.cert_read and r.cert_warning == CertExpiry(7, 6)
    assert EvaluationResult.from_wire(r.to_wire()) == r


def test_a_hanging_keystore_does_not_hold_the_answer() -> None:
    def hang() -> Any:
        time.sleep(30)

    t0 = time.monotonic()
    assert read_cert(hang, timeout_s=0.3) == (False, None)
    assert time.monotonic() - t0 < 2


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "DBUS_"))}
    return {**env, "HOME": str(tmp_path), "TMPDIR": str(tmp_path), "PYTHONPATH": str(REPO),
            "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache")}


def test_the_real_worker_prints_one_readable_line(tmp_path: Path) -> None:
    """This machine's real checks under the shipped demo policy, in a scratch home (no
    certificate, no keyring session: the keystore answers "none" or is not read)."""
    out = subprocess.run([sys.executable, "-m", "agent", "evaluate", "--wire", "--tray-started",
                          "2026-11-27T12:00:00+09:00"], env=_env(tmp_path), cwd=REPO,
                         capture_output=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count(b"\n") == 1
    r = EvaluationResult.from_wire(out.stdout)
    assert r.view("ja").state in (TrayState.BLOCKED, TrayState.WARNING, TrayState.COMPLIANT,
                                  TrayState.ERROR)
    assert b"Traceback" not in out.stderr
    if r.view("en").state is not TrayState.ERROR:
        assert {row.check_id for row in r.view("en").rows} >= {"os_supported", "disk_encryption"}


@pytest.mark.parametrize(("argv", "needle"), [
    (["evaluate"], "byod-agent check"),
    (["evaluate", "--wire", "--tray-started", "yesterday"], "ISO 8601"),
    (["evaluate", "--wire", "--tray-started", "2026-11-27T12:00:00"], "ISO 8601"),  # no offset
])
def test_the_worker_refuses_wrong_use(tmp_path: Path, argv: list[str], needle: str) -> None:
    out = subprocess.run([sys.executable, "-m", "agent", "--lang", "en", *argv],
                         env=_env(tmp_path), cwd=REPO, capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 2 and needle in out.stderr and out.stdout == ""


HEAVY = ("agent.posture", "agent.policy", "agent.keystore", "cryptography", "keyring",
         "requests", "tuf", "pyrage", "psutil")


def test_the_wire_side_loads_no_evaluation_code() -> None:
    code = ("import sys, agent.presentation.evaluation, agent.presentation.notify, "
            "agent.presentation.connect_gate, agent.presentation.status_view; "
            "print('\\n'.join(sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=60, check=True)
    loaded = set(out.stdout.split())
    bad = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert bad == []
