"""The export reuses the tray's last evaluation (agent/presentation/last_evaluation.py, issue 20
item 3) only when it is fresh, of this agent version and of the policy in force; otherwise it
evaluates. The file is 0600 and written atomically; anything odd in it means "evaluate".

Reports are built from the real models (agent/posture/model.py), as tests/unit/
test_evaluate_worker.py builds them (reconstructed, not recorded: the shapes are the models'
own); the policy is the shipped, signed demo policy (resources/policy/), loaded and verified by
the real loader; decisions are made by the real ``agent.policy.decision.decide``.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import agent
from agent.core.messages import msg
from agent.diagnostics import export
from agent.policy.decision import decide, decision_to_json
from agent.policy.errors import PolicyRefused
from agent.policy.evaluate import Evaluation
from agent.policy.loader import policy_in_force
from agent.policy.model import LoadedPolicy
from agent.policy.signing import load_trust_anchors
from agent.policy.state import PolicyState
from agent.posture.model import CheckResult, HostInfo, Report, Status
from agent.presentation import last_evaluation as le
from agent.presentation.evaluate_worker import evaluate_once
from agent.presentation.status_view import PolicyEvaluator

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _report(generated_at: str = "2026-12-01T11:58:00Z") -> Report:
    checks = (
        CheckResult("os_supported", Status.PASS, msg("probe.unsupported", what="x", n=3),
                    {"build": 22631, "nested": {"list": [1, "二"]}}, None, 3),
        CheckResult("disk_encryption", Status.FAIL, msg("probe.unsupported", what="y"),
                    {"device": "/dev/vda"}, "disk_encryption", 12),
        CheckResult("firewall", Status.UNKNOWN, msg("probe.unsupported", what="z"), {},
                    "firewall.unknown", 7),
    )
    return Report(generated_at, HostInfo("linux", "Debian 12", "pc-01", "x86_64"), checks)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> LoadedPolicy:
    state = PolicyState(tmp_path_factory.mktemp("policy-state"))
    return policy_in_force(state, load_trust_anchors(), now=datetime.now(UTC))


def _key(loaded: LoadedPolicy) -> le.PolicyKey:
    return le.PolicyKey(loaded.policy.id, loaded.policy.serial, loaded.sha256)


def _evaluation(loaded: LoadedPolicy, report: Report | None = None) -> Evaluation:
    report = report or _report()
    return Evaluation(loaded, report, decide(report, loaded.policy, datetime.now(UTC)))


def _boom(*_a: Any, **_k: Any) -> Any:
    raise AssertionError("a posture run was started although a fresh evaluation was saved")


@pytest.fixture
def no_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way collect() could run the checks fails the test."""
    monkeypatch.setattr(export, "run_posture", _boom)
    monkeypatch.setattr(export, "default_context", _boom)
    monkeypatch.setattr(export, "evaluate", _boom)


def _no_identity() -> tuple[None, str]:
    return None, "none"


def test_round_trip_is_lossless_and_private(tmp_path: Path, loaded: LoadedPolicy) -> None:
    path = tmp_path / "state" / le.FILE_NAME
    ev = _evaluation(loaded)
    le.remember(ev, path=path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in path.parent.iterdir() if p != path]  # no temp file left behind
    saved = le.load_fresh(_key(loaded), path=path)
    assert saved is not None
    assert saved.report == ev.report  # message keys, parameters, evidence, timings
    assert saved.decision["correlation_id"] == ev.decision.correlation_id
    assert saved.decision["policy_serial"] == loaded.policy.serial


@pytest.mark.parametrize(("saved_at", "reused"), [
    (NOW - timedelta(minutes=4, seconds=59), True),
    (NOW - le.MAX_AGE, True),
    (NOW - le.MAX_AGE - timedelta(seconds=1), False),
    (NOW + timedelta(seconds=10), True),  # a small clock step
    (NOW + timedelta(minutes=10), False),  # from the future: not trusted
])
def test_freshness(tmp_path: Path, loaded: LoadedPolicy, saved_at: datetime,
                   reused: bool) -> None:
    path = tmp_path / le.FILE_NAME
    le.save(_report(), decision_to_json(_evaluation(loaded).decision), _key(loaded), path=path,
            now=saved_at)
    assert (le.load_fresh(_key(loaded), path=path, now=NOW) is not None) is reused


def _doc(tmp_path: Path, loaded: LoadedPolicy) -> tuple[Path, dict[str, Any]]:
    path = tmp_path / le.FILE_NAME
    le.save(_report(), decision_to_json(_evaluation(loaded).decision), _key(loaded), path=path,
            now=NOW)
    return path, json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("spoil", [
    lambda d: d["policy"].update(serial=d["policy"]["serial"] + 1),  # another serial
    lambda d: d["policy"].update(sha256="0" * 64),  # same serial, other bytes
    lambda d: d["policy"].update(id="other-city"),
    lambda d: d["decision"].update(policy_serial=-1),
    lambda d: d.update(agent_version="0.0.1"),  # saved by another agent version
    lambda d: d.update(schema=2),
    lambda d: d.update(saved_at="2026-12-01T12:00:00"),  # no offset
    lambda d: d["report"]["checks"][0].update(status="passed"),
    lambda d: d["report"]["checks"][0].update(id="../../etc"),
    lambda d: d["report"]["checks"][0].update(duration_ms=True),
    lambda d: d["report"]["checks"][0]["summary"].update(params={"x": [1]}),
    lambda d: d["report"].pop("host"),
    lambda d: d.update(report=[]),
])
def test_anything_odd_means_evaluate(tmp_path: Path, loaded: LoadedPolicy, spoil: Any) -> None:
    path, doc = _doc(tmp_path, loaded)
    assert le.load_fresh(_key(loaded), path=path, now=NOW) is not None
    spoil(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert le.load_fresh(_key(loaded), path=path, now=NOW) is None


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b"\xff\xfe", b"{}" + b" " * le.MAX_BYTES])
def test_garbage_oversize_and_missing(tmp_path: Path, loaded: LoadedPolicy,
                                      content: bytes) -> None:
    path = tmp_path / le.FILE_NAME
    assert le.load_fresh(_key(loaded), path=path, now=NOW) is None  # missing
    path.write_bytes(content)
    assert le.load_fresh(_key(loaded), path=path, now=NOW) is None


def test_a_symlink_is_not_followed(tmp_path: Path, loaded: LoadedPolicy) -> None:
    real, _ = _doc(tmp_path, loaded)
    link = tmp_path / "link.json"
    os.symlink(real, link)
    assert le.load_fresh(_key(loaded), path=link, now=NOW) is None


def test_export_reuses_a_fresh_evaluation_without_running_a_probe(
        tmp_path: Path, loaded: LoadedPolicy, no_probes: None) -> None:
    path = tmp_path / le.FILE_NAME
    ev = _evaluation(loaded)
    le.remember(ev, path=path)
    collected = export.collect(
        reuse=lambda: export.reusable(in_force=lambda: loaded, last_path=path),
        evaluate_fn=_boom, identity=_no_identity, connectivity_timeout=0.5)
    assert collected.report == ev.report
    assert collected.extra["decision"] == decision_to_json(ev.decision) | {
        "decided_at": collected.extra["decision"]["decided_at"]}
    assert collected.extra["correlation_id"] == ev.decision.correlation_id
    assert collected.extra["policy"]["serial"] == loaded.policy.serial
    assert collected.policy_id == loaded.policy.id


@pytest.mark.parametrize("age", [timedelta(minutes=6), None])
def test_a_stale_or_missing_evaluation_is_evaluated_again(
        tmp_path: Path, loaded: LoadedPolicy, age: timedelta | None) -> None:
    path = tmp_path / le.FILE_NAME
    if age is not None:
        le.save(_report("2026-01-01T00:00:00Z"), decision_to_json(_evaluation(loaded).decision),
                _key(loaded), path=path, now=datetime.now(UTC) - age)
    fresh = _evaluation(loaded, _report("2026-12-01T12:00:00Z"))
    calls: list[int] = []

    def evaluate_fn() -> Evaluation:
        calls.append(1)
        return fresh

    collected = export.collect(
        reuse=lambda: export.reusable(in_force=lambda: loaded, last_path=path),
        evaluate_fn=evaluate_fn, identity=_no_identity, connectivity_timeout=0.5)
    assert calls == [1]
    assert collected.report is fresh.report
    assert collected.extra["correlation_id"] == fresh.decision.correlation_id


def test_no_policy_in_force_means_evaluate(tmp_path: Path) -> None:
    assert export.reusable(in_force=lambda: None, last_path=tmp_path / le.FILE_NAME) is None


def test_the_worker_saves_only_what_the_policy_decided(loaded: LoadedPolicy) -> None:
    kept: list[Evaluation] = []
    ev = _evaluation(loaded)
    evaluate_once(PolicyEvaluator(lambda: ev, maintenance=lambda: None),
                  cert_status=_boom, cert_timeout_s=0.5, remember=kept.append)
    assert kept == [ev]

    def refused() -> Evaluation:
        raise PolicyRefused(msg("policy.refused.expired", expires="2026-01-01"), "expired")

    evaluate_once(PolicyEvaluator(refused, maintenance=lambda: None),
                  cert_status=_boom, cert_timeout_s=0.5, remember=kept.append)
    assert kept == [ev]


def test_a_failing_save_never_changes_what_the_tray_shows(loaded: LoadedPolicy) -> None:
    ev = _evaluation(loaded)
    r = evaluate_once(PolicyEvaluator(lambda: ev, maintenance=lambda: None),
                      cert_status=_boom, cert_timeout_s=0.5, remember=_boom)
    assert r.view("en").state.value != "error"


def test_version_is_lazy_and_cached() -> None:
    assert agent.__version__ == agent.__version__
    assert "__version__" in vars(agent)
