"""Signature, validity, rollback and the last good policy: the tamper matrix and the admin tools."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admin import cli as admin
from agent.core.paths import resources_dir
from agent.policy import signing
from agent.policy.errors import PolicyRefused
from agent.policy.loader import load_file, resolve_active, verify_policy
from agent.policy.schema import MAX_POLICY_BYTES
from agent.policy.state import PolicyState
from tests.conftest import REPO
from tests.unit.test_policy_support import NOW, Signer, policy_text, state_in

SIGNER = Signer()
OTHER = Signer("other")


def _flip(raw: bytes, pos: int) -> bytes:
    b = bytearray(raw)
    b[pos] ^= 0x01
    return bytes(b)


def _flip_sig(sig: bytes) -> bytes:
    doc = json.loads(sig)
    raw = base64.b64decode(doc["signature"])
    doc["signature"] = base64.b64encode(_flip(raw, 10)).decode()
    return json.dumps(doc).encode()


def _signed(text: str | bytes) -> tuple[bytes, bytes]:
    data = text.encode() if isinstance(text, str) else text
    return data, SIGNER.sign(data)


GOOD = policy_text(5).encode()
Tamper = Callable[[], tuple[bytes, bytes]]
TAMPER: dict[str, tuple[Tamper, str]] = {
    "flipped byte in body": (lambda: (_flip(GOOD, 40), SIGNER.sign(GOOD)), "bad_signature"),
    "flipped byte in signature": (lambda: (GOOD, _flip_sig(SIGNER.sign(GOOD))), "bad_signature"),
    "truncated body": (lambda: (GOOD[:-20], SIGNER.sign(GOOD)), "bad_signature"),
    "truncated signature": (lambda: (GOOD, SIGNER.sign(GOOD)[:60]), "sig_malformed"),
    "signature not JSON": (lambda: (GOOD, b"\x00garbage"), "sig_malformed"),
    "wrong key": (lambda: (GOOD, OTHER.sign(GOOD)), "unknown_signer"),
    "expired": (lambda: _signed(policy_text(6, expires="2026-11-01T00:00:00+09:00")), "expired"),
    "not yet valid": (lambda: _signed(policy_text(6, not_before="2026-12-24T00:00:00+09:00")),
                      "not_yet_valid"),
    "unknown field": (lambda: _signed("colour = \"red\"\n" + policy_text(6)), "unknown_field"),
    "wrong type": (lambda: _signed(policy_text(6).replace("= 30\n", "= \"30\"\n", 1)),
                   "wrong_type"),
    "oversized": (lambda: _signed(policy_text(6).encode() + b"#" * MAX_POLICY_BYTES),
                  "too_large"),
    "non-UTF-8": (lambda: _signed(policy_text(6).encode().replace(
        "庁内".encode(), "庁内".encode("shift_jis"))), "not_utf8"),
    "duplicate keys": (lambda: _signed("serial = 6\n" + policy_text(6)), "toml"),
}


@pytest.mark.parametrize("case", sorted(TAMPER))
def test_tampered_policy_is_refused(case: str) -> None:
    make, reason = TAMPER[case]
    data, sig = make()
    with pytest.raises(PolicyRefused) as info:
        verify_policy(data, sig, [SIGNER.anchor], now=NOW)
    assert info.value.reason == reason
    assert info.value.message.key.startswith("policy.refused.")


@pytest.mark.parametrize("case", sorted(TAMPER))
def test_refused_policy_never_replaces_the_last_good_one(case: str, tmp_path: Path) -> None:
    installed = tmp_path / "installed"
    installed.mkdir()
    state = state_in(tmp_path)
    SIGNER.write(installed / "city.toml", GOOD)
    first = resolve_active(state, [SIGNER.anchor], now=NOW, installed=installed)
    assert first.loaded is not None and first.loaded.policy.serial == 5
    data, sig = TAMPER[case][0]()
    (installed / "city.toml").write_bytes(data)
    (installed / "city.toml.sig").write_bytes(sig)
    again = resolve_active(state, [SIGNER.anchor], now=NOW, installed=installed)
    assert again.loaded is not None
    assert (again.loaded.source, again.loaded.policy.serial) == ("cache", 5)
    assert [r.message.key for r in again.refused] == [f"policy.refused.{TAMPER[case][1]}"]
    assert state.refusals()[0].message.key == f"policy.refused.{TAMPER[case][1]}"


def test_lower_serial_after_a_higher_one_is_refused(tmp_path: Path) -> None:
    state = state_in(tmp_path)
    high = SIGNER.write(tmp_path / "high.toml", policy_text(9))
    low = SIGNER.write(tmp_path / "low.toml", policy_text(8))
    assert load_file(high, [SIGNER.anchor], state, now=NOW).policy.serial == 9
    with pytest.raises(PolicyRefused) as info:
        load_file(low, [SIGNER.anchor], state, now=NOW)
    assert info.value.reason == "rollback"
    assert dict(info.value.message.params) == {"serial": 8, "highest": 9, "id": "test-city"}
    # the same serial again is fine (re-reading the policy in force)
    assert load_file(high, [SIGNER.anchor], state, now=NOW).policy.serial == 9
    # the installed copy, now older than what was accepted, is refused as well
    installed = tmp_path / "installed"
    installed.mkdir()
    shutil.copy(low, installed / "low.toml")
    shutil.copy(low.with_name("low.toml.sig"), installed / "low.toml.sig")
    res = resolve_active(state, [SIGNER.anchor], now=NOW, installed=installed)
    assert res.loaded is None and res.refused[0].message.key == "policy.refused.rollback"


def test_cached_update_with_higher_serial_wins_over_installed(tmp_path: Path) -> None:
    installed = tmp_path / "installed"
    installed.mkdir()
    state = state_in(tmp_path)
    SIGNER.write(installed / "city.toml", policy_text(3))
    newer = policy_text(4).encode()
    state.store_last_good(newer, SIGNER.sign(newer), SIGNER.anchor.key_id, "test-city")
    res = resolve_active(state, [SIGNER.anchor], now=NOW, installed=installed)
    assert res.loaded is not None and (res.loaded.source, res.loaded.policy.serial) == ("cache", 4)
    assert res.refused == []  # the older installed copy is superseded, not refused


def test_state_file_is_atomic_private_and_merges(tmp_path: Path) -> None:
    a, b = PolicyState(tmp_path), PolicyState(tmp_path)
    a.record_accepted("x", 3)
    b.record_accepted("y", 1)  # another process: must not lose x
    a.record_accepted("x", 2)  # lower: ignored
    assert (a.highest_serial("x"), a.highest_serial("y")) == (3, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy-state.json"]
    if os.name == "posix":
        assert stat.S_IMODE((tmp_path / "policy-state.json").stat().st_mode) == 0o600


def test_damaged_state_refuses_rather_than_forgetting_serials(tmp_path: Path) -> None:
    state = PolicyState(tmp_path)
    state.file.write_text("{not json")
    path = SIGNER.write(tmp_path / "p.toml", GOOD)
    with pytest.raises(PolicyRefused) as info:
        load_file(path, [SIGNER.anchor], state, now=NOW)
    assert info.value.reason == "state_unreadable"


def test_no_anchor_and_missing_signature(tmp_path: Path) -> None:
    with pytest.raises(PolicyRefused) as info:
        verify_policy(GOOD, SIGNER.sign(GOOD), [], now=NOW)
    assert info.value.reason == "no_trust_anchor"
    (tmp_path / "p.toml").write_bytes(GOOD)
    with pytest.raises(PolicyRefused) as info:
        load_file(tmp_path / "p.toml", [SIGNER.anchor], state_in(tmp_path), now=NOW)
    assert info.value.reason == "sig_missing"


def test_trust_anchors_only_from_pub_files(tmp_path: Path) -> None:
    SIGNER.write_pub(tmp_path)
    (tmp_path / "broken.pub").write_text("not a key")
    (tmp_path / "ignored.pem").write_bytes(signing.public_key_pem(OTHER.key.public_key()))
    anchors = signing.load_trust_anchors(tmp_path)
    assert [a.key_id for a in anchors] == [SIGNER.anchor.key_id]


def test_shipped_demo_anchor_is_marked_demo() -> None:
    anchors = signing.load_trust_anchors()
    assert [a.name for a in anchors] == ["demo-DEMO"] and anchors[0].demo


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutations_are_never_accepted(data: st.DataObject) -> None:
    """Any change to the signed bytes (flip, insert, delete, truncate, append) is refused."""
    sig = SIGNER.sign(GOOD)
    raw = bytearray(GOOD)
    op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate", "append"]))
    pos = data.draw(st.integers(0, len(raw) - 1))
    if op == "flip":
        raw[pos] ^= data.draw(st.integers(1, 255))
    elif op == "insert":
        raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    elif op == "delete":
        del raw[pos:pos + data.draw(st.integers(1, 8))]
    elif op == "truncate":
        del raw[pos:]
    else:
        raw += data.draw(st.binary(min_size=1, max_size=8))
    assert bytes(raw) != GOOD
    with pytest.raises(PolicyRefused):
        verify_policy(bytes(raw), sig, [SIGNER.anchor], now=NOW)


# --- byod-admin: keygen -> sign -> verify, and the agent accepts it with the .pub as anchor ---

def test_keygen_sign_verify_and_agent_accepts(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    pw = tmp_path / "pass.txt"
    pw.write_text("correct horse battery staple\n")
    keys = tmp_path / "keys"
    assert admin.main(["keygen", "--out", str(keys), "--passphrase-file", str(pw)]) == 0
    key_file = keys / "policy-signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in key_file.read_bytes()  # never plaintext on disk
    # keygen never overwrites
    assert admin.main(["keygen", "--out", str(keys), "--passphrase-file", str(pw)]) == 2

    pol = tmp_path / "city.toml"
    pol.write_text(policy_text(1), encoding="utf-8")
    assert admin.main(["policy", "sign", str(pol), "--key", str(key_file),
                       "--passphrase-file", str(pw)]) == 0
    pub = keys / "policy-signing.pub"
    assert admin.main(["policy", "verify", str(pol), "--pubkey", str(pub)]) == 0

    trust = tmp_path / "trust"
    trust.mkdir()
    shutil.copy(pub, trust / "city.pub")
    loaded = load_file(pol, signing.load_trust_anchors(trust), state_in(tmp_path),
                       now=NOW)
    assert loaded.policy.id == "test-city" and not loaded.demo

    pol.write_bytes(pol.read_bytes().replace(b"serial = 1", b"serial = 2"))
    capsys.readouterr()
    assert admin.main(["policy", "verify", str(pol), "--pubkey", str(pub)]) == 2
    assert "signature" in capsys.readouterr().err.lower()


def test_sign_refuses_wrong_passphrase_and_invalid_policy(tmp_path: Path) -> None:
    pw = tmp_path / "pass.txt"
    pw.write_text("correct horse battery staple\n")
    admin.main(["keygen", "--out", str(tmp_path), "--passphrase-file", str(pw)])
    bad_pw = tmp_path / "bad.txt"
    bad_pw.write_text("wrong passphrase here\n")
    pol = tmp_path / "city.toml"
    pol.write_text(policy_text(1), encoding="utf-8")
    key = str(tmp_path / "policy-signing.key")
    assert admin.main(["policy", "sign", str(pol), "--key", key,
                       "--passphrase-file", str(bad_pw)]) == 2
    pol.write_text("colour = 1\n" + policy_text(1), encoding="utf-8")
    assert admin.main(["policy", "sign", str(pol), "--key", key,
                       "--passphrase-file", str(pw)]) == 2
    assert not (tmp_path / "city.toml.sig").exists()


# --- byod-agent check --policy against the installed (demo) trust anchor, as a real process ---

def _agent(args: list[str], state: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(state), "BYOD_AGENT_LANG": "en"}
    return subprocess.run([sys.executable, "-m", "agent", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def _demo_copy(tmp: Path) -> Path:
    src = resources_dir() / "policy" / "demo-policy.toml"
    dst = tmp / "demo-policy.toml"
    shutil.copy(src, dst)
    shutil.copy(src.with_name(src.name + ".sig"), dst.with_name(dst.name + ".sig"))
    return dst


@pytest.mark.parametrize(("tamper", "reason"), [
    ("body", "policy.refused.bad_signature"),
    ("sig", "policy.refused.bad_signature"),
    ("nosig", "policy.refused.sig_missing"),
    ("foreign", "policy.refused.unknown_signer"),
])
def test_check_with_tampered_policy_exits_2_with_reason(tamper: str, reason: str,
                                                        tmp_path: Path) -> None:
    pol = _demo_copy(tmp_path)
    sig = pol.with_name(pol.name + ".sig")
    if tamper == "body":
        pol.write_bytes(pol.read_bytes().replace(b"serial = 1", b"serial = 2"))
    elif tamper == "sig":
        sig.write_bytes(_flip_sig(sig.read_bytes()))
    elif tamper == "nosig":
        sig.unlink()
    else:
        sig.write_bytes(OTHER.sign(pol.read_bytes()))
    out = _agent(["check", "--json", "--policy", str(pol)], tmp_path / "state")
    assert out.returncode == 2, out.stderr
    doc = json.loads(out.stdout)
    assert doc["policy"]["status"] == "refused" and doc["policy"]["reason_key"] == reason
    assert doc["decision"] is None and doc["compliant"] is False
    plain = _agent(["check", "--policy", str(pol)], tmp_path / "state")
    assert plain.returncode == 2 and "refused" in plain.stderr
    # policy show keeps the demo in force and says why the other file was refused
    show = json.loads(_agent(["policy", "show", "--json"], tmp_path / "state").stdout)
    assert show["policy"]["id"] == "demo-city"
    assert show["refused"][0]["reason_key"] == reason and show["refused"][0]["source"] == "file"


def test_demo_policy_works_from_a_fresh_state(tmp_path: Path) -> None:
    out = _agent(["check", "--json"], tmp_path / "state")
    assert out.returncode in (0, 1), out.stderr
    doc = json.loads(out.stdout)
    assert doc["policy"]["id"] == "demo-city" and doc["policy"]["demo"] is True
    assert doc["compliant"] is doc["decision"]["allowed"]
    assert out.returncode == (0 if doc["decision"]["allowed"] else 1)
    assert len(doc["decision"]["correlation_id"]) == 8
    assert {c["id"] for c in doc["checks"]} >= {"os_supported", "os_updates", "disk_encryption",
                                                "antivirus", "firewall", "screen_lock"}
    show = _agent(["policy", "show", "--json"], tmp_path / "state")
    assert show.returncode == 0
    assert json.loads(show.stdout)["policy"]["signed_by"]["anchor"] == "demo-DEMO"
    text = _agent(["policy", "show"], tmp_path / "state")
    assert "DEMO" in text.stdout


def test_evaluate_with_an_it_key_in_the_trust_dir(tmp_path: Path) -> None:
    """keygen -> sign -> check --policy, with the trust directory handed in."""
    from agent.policy.evaluate import evaluate

    pol = SIGNER.write(tmp_path / "city.toml", policy_text(1, expires="2099-01-01T00:00:00Z"))
    with pytest.raises(PolicyRefused) as info:  # not yet an anchor: refused
        evaluate(pol, state_dir=tmp_path / "state", trust_dir=tmp_path / "trust")
    assert info.value.reason == "no_trust_anchor"
    SIGNER.write_pub(tmp_path / "trust")
    result = evaluate(pol, state_dir=tmp_path / "state", trust_dir=tmp_path / "trust")
    assert result.loaded.policy.id == "test-city" and result.loaded.source == "file"
    assert result.decision.policy_id == "test-city"
    assert {c.id for c in result.decision.checks} >= {"os_updates", "disk_encryption"}
