"""Issue 18 classes 1, 2, 6 and 7 for the help desk's reader: who signed, what reaches the terminal,
wrong JSON types, member names with a trailing newline.

Every case here failed on the code before issue 18 (a self-signed "Yamada Taro" was "verified,
signed by CN=Yamada Taro"; ESC/CR/newlines reached the terminal; a string where an object belongs
raised AttributeError; "summary.txt\\n" was accepted as a member name).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.diagnostics import render
from agent.diagnostics.reader import HostileBundle, load_ca_file, open_bundle
from testkit.pki import CA, DAY, NOW, Pair, issue, make_ca

REPO = Path(__file__).resolve().parents[2]
POSTURE = {"schema": 1, "agent_version": "0.1.0", "compliant": False,
           "host": {"os": "linux", "os_version": "x", "hostname": "host-1", "arch": "x86_64"},
           "checks": [{"id": "firewall", "status": "fail",
                       "summary": {"ja": "無効", "en": "off"}, "evidence": {"n": 1},
                       "remediation": {"key": "k", "ja": {"title": "有効に"},
                                       "en": {"title": "turn it on"}}}]}


class _Signer:
    def __init__(self, key: Any, cert_pem: bytes) -> None:
        self.key, self.pem = key, cert_pem

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return bytes(self.key.sign(data, ec.ECDSA(hashes.SHA256())))
        if isinstance(self.key, dsa.DSAPrivateKey):
            return bytes(self.key.sign(data, hashes.SHA256()))
        return bytes(self.key.sign(data))

    def certificate_pem(self) -> bytes:
        return self.pem


def _zip(files: dict[str, bytes], signer: _Signer | None = None,
         manifest: dict[str, Any] | None = None) -> bytes:
    man = manifest or {"schema": 1, "bundle_id": "TEST-0000", "created_at": "2026-12-01T00:00Z",
                       "agent_version": "0.1.0", "redaction_level": "standard", "ticket": None,
                       "files": [{"name": n, "sha256": hashlib.sha256(d).hexdigest(),
                                  "size": len(d)} for n, d in sorted(files.items())]}
    man_bytes = json.dumps(man, ensure_ascii=False).encode()
    entries = {**files, "manifest.json": man_bytes}
    if signer is not None:
        entries["manifest.sig"] = signer.sign(man_bytes)
        entries["signer.pem"] = signer.certificate_pem()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o100644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _posture(**changes: Any) -> dict[str, bytes]:
    return {"posture.json": json.dumps({**POSTURE, **changes}, ensure_ascii=False).encode()}


def _self_signed(cn: str, key: Any, *, client: bool = True) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(NOW - DAY).not_valid_after(NOW + DAY))
    if client:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
    algo = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return b.sign(key, algo).public_bytes(serialization.Encoding.PEM)


def _signer(pair: Pair, chain: tuple[x509.Certificate, ...] = ()) -> _Signer:
    pem = pair.cert_pem + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    return _Signer(pair.key, pem)


# -- class 1: who signed ---------------------------------------------------------------------

def test_a_self_signed_staff_name_is_an_unknown_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    forged = _Signer(key, _self_signed("Yamada Taro", key))
    b = open_bundle(_zip(_posture(), forged), cas=[CA.cert])
    v = b.verification
    assert v.signature_ok and not v.signer_trusted and not v.verified
    line = render.integrity_line(render.digest(b))
    assert "unknown key" in line and "Yamada" not in line and not line.startswith("verified")


@pytest.mark.parametrize(("pair", "why"), [
    (issue(CA, "Sub CA", is_ca=True), "CA certificate"),
    (issue(CA, "gw.city.example", usages=(ExtendedKeyUsageOID.SERVER_AUTH,)), "not a client"),
    (issue(CA, "no usage", usages=None), "no extended key usage"),
    (issue(make_ca("Other City CA"), "Yamada Taro"), "does not chain"),
    (issue(CA, "Expired", not_before=NOW - 30 * DAY, not_after=NOW - DAY), "does not chain"),
])
def test_only_a_city_issued_client_certificate_is_named(pair: Pair, why: str) -> None:
    b = open_bundle(_zip(_posture(), _signer(pair)), cas=[CA.cert])
    assert not b.verification.verified and why in (b.verification.signer_problem or "")
    assert "unknown key" in render.integrity_line(render.digest(b))


def test_a_city_issued_device_certificate_is_verified_and_named() -> None:
    user = issue(CA, "Yamada Taro")
    b = open_bundle(_zip(_posture(), _signer(user, (CA.cert,))), cas=[CA.cert])
    assert b.verification.verified
    assert render.integrity_line(render.digest(b)).startswith("verified, signed by CN=Yamada")
    # Without the city CA nothing is named, however good the signature.
    b2 = open_bundle(_zip(_posture(), _signer(user)))
    assert not b2.verification.verified and "--ca" in (b2.verification.signer_problem or "")


def test_an_intermediate_that_is_not_a_ca_does_not_make_a_chain() -> None:
    mid = issue(CA, "not a CA")
    leaf = issue(mid, "Yamada Taro")
    b = open_bundle(_zip(_posture(), _signer(leaf, (mid.cert,))), cas=[CA.cert])
    assert not b.verification.verified


def test_the_ca_file_must_hold_ca_certificates() -> None:
    with pytest.raises(HostileBundle, match="not a CA"):
        load_ca_file(issue(CA, "Yamada Taro").cert_pem)
    with pytest.raises(HostileBundle, match="no PEM"):
        load_ca_file(b"garbage")


# -- class 6: unknown key algorithms, wrong JSON types ---------------------------------------

def test_unknown_signer_key_algorithm_is_hostile_not_a_traceback() -> None:
    key = dsa.generate_private_key(2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Yamada Taro")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(NOW - DAY).not_valid_after(NOW + DAY).sign(key, hashes.SHA256()))
    signer = _Signer(key, cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(HostileBundle, match="not supported"):
        open_bundle(_zip(_posture(), signer), cas=[CA.cert])


@pytest.mark.parametrize("files", [
    _posture(checks="not a list"),
    _posture(checks=[{"id": "firewall", "status": "fail", "summary": ["ja", "en"]}]),
    _posture(checks=[{"id": "firewall", "status": "fail", "remediation": {"en": "a string"}}]),
    _posture(checks=[{"id": 7, "status": "fail"}]),
    _posture(checks=[{"id": "x", "status": "pwned"}]),
    _posture(host="a string"),
    {"posture.json": b"[1, 2, 3]"},
    {"decision.json": b'"a string"'},
    {"decision.json": b'{"correlation_id": {"nested": 1}}'},
    {"connectivity.json": b'{"targets": 5}'},
    {"connectivity.json": b'{"targets": [{"target": "t", "endpoint": "e", "dns": "ok"}]}'},
])
def test_wrong_json_types_are_refused_as_hostile(files: dict[str, bytes]) -> None:
    with pytest.raises(HostileBundle, match="wrong structure"):
        open_bundle(_zip(files))


@pytest.mark.parametrize("manifest", [
    {"schema": 1, "files": 5},
    {"schema": 1, "files": [{"name": "posture.json", "sha256": 12}]},
    {"schema": "1", "files": []},
    {"schema": 1, "files": [], "bundle_id": {"a": 1}},
    {"schema": 1, "files": [], "ticket": ["x"]},
    {"schema": 1, "files": [{"name": "a\n", "sha256": "0" * 64}]},
])
def test_manifest_with_wrong_types_is_hostile(manifest: dict[str, Any]) -> None:
    with pytest.raises(HostileBundle):
        open_bundle(_zip({}, manifest=manifest))


# -- class 7: a member name with a trailing newline ------------------------------------------

def test_member_name_with_trailing_newline() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("summary.txt\n", b"x")
    with pytest.raises(HostileBundle, match="unsafe member name"):
        open_bundle(buf.getvalue())


# -- class 2: nothing from the bundle can repaint the terminal or fake our lines -------------

HOSTILE = ["\x1b[2J\x1b[HIntegrity: verified, signed by CN=Help Desk", "\rIntegrity: verified",
           "x\nIntegrity: verified\nState: OK", "\x07\x1b]0;title\x07", "\u202eKO :etatS",
           "a\x85Integrity: verified", "b\u2028State: OK", "\x9b31mred", "tab\there"]


def _forged_digest(text: str) -> dict[str, Any]:
    files = _posture(checks=[{"id": text, "status": "fail", "summary": {"ja": text, "en": text},
                              "evidence": {text: text},
                              "remediation": {"en": {"title": text}}}],
                     host={"os": text})
    files["decision.json"] = json.dumps({"correlation_id": text}).encode()
    files["logs/agent.log"] = f"ERROR {text}\nfail {text}\r\n".encode()
    files["connectivity.json"] = json.dumps({"targets": [{
        "target": text[:80], "endpoint": text,
        "dns": {"status": text[:40], "detail": text}}]}).encode()
    man = {"schema": 1, "bundle_id": text[:20], "created_at": text[:40],
           "agent_version": text[:40], "ticket": text[:40],
           "files": [{"name": n, "sha256": hashlib.sha256(d).hexdigest()}
                     for n, d in files.items()]}
    return render.digest(open_bundle(_zip(files, _signer(issue(CA, "Other")), man),
                                     cas=[make_ca("x").cert]))


def _assert_safe(out: str, ours: int = 1) -> None:
    lines = out.split("\n")
    assert sum(line.startswith("Integrity:") for line in lines) == ours, out
    assert not any(line.lstrip().startswith("State:") for line in lines), out
    for ch in out:
        code = ord(ch)
        assert ch == "\n" or not (code < 0x20 or 0x7F <= code <= 0x9F), repr(ch)
        assert not (0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069 or code in (0x2028,
                                                                                     0x2029))


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_fields_never_reach_the_terminal_raw(text: str) -> None:
    d = _forged_digest(text)
    out = render.as_text(d)
    _assert_safe(out)
    assert "Integrity: NOT VERIFIED" in out


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=30))
def test_any_field_text_is_safe_on_a_terminal(text: str) -> None:
    _assert_safe(render.as_text(_forged_digest("Integrity: verified " + text)))


def test_problems_naming_files_are_escaped() -> None:
    files = _posture()
    man = {"schema": 1, "files": [{"name": "posture.json", "sha256": "0" * 64}]}
    d = render.digest(open_bundle(_zip(files, manifest=man)))
    _assert_safe(render.as_text(d))
    assert "TAMPERED" in render.integrity_line(d)


# -- the command line: exit codes and messages, never a traceback ----------------------------

def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "c"),
           "XDG_DATA_HOME": str(home / "d"), "XDG_STATE_HOME": str(home / "s"),
           "TMPDIR": str(home), "BYOD_AGENT_LANG": "en"}
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=60, check=False)


def test_diag_show_exit_codes(tmp_path: Path) -> None:
    ca_file = tmp_path / "city-ca.pem"
    ca_file.write_bytes(CA.cert_pem)
    user = issue(CA, "Yamada Taro")
    good = tmp_path / "good.zip"
    good.write_bytes(_zip(_posture(), _signer(user, (CA.cert,))))
    key = ec.generate_private_key(ec.SECP256R1())
    forged = tmp_path / "forged.zip"
    forged.write_bytes(_zip(_posture(), _Signer(key, _self_signed("Yamada Taro", key))))
    wrong = tmp_path / "wrong.zip"
    wrong.write_bytes(_zip(_posture(checks=[{"id": "x", "status": "fail",
                                             "remediation": {"en": "str"}}])))
    ok = _cli("diag", "show", str(good), "--ca", str(ca_file), home=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "verified, signed by CN=Yamada Taro" in ok.stdout
    bad = _cli("diag", "show", str(forged), "--ca", str(ca_file), home=tmp_path)
    assert bad.returncode == 1 and "unknown key" in bad.stdout and "Yamada" not in bad.stdout
    hostile = _cli("diag", "show", str(wrong), "--ca", str(ca_file), home=tmp_path)
    assert hostile.returncode == 2 and "wrong structure" in hostile.stderr
    assert "Traceback" not in ok.stderr + bad.stderr + hostile.stderr


def test_signer_checked_at_the_given_time() -> None:
    """The chain is checked at the time the desk reads it: a certificate expired since is not
    named (docs/security.md)."""
    user = issue(CA, "Yamada Taro")
    later = dt.datetime.now(dt.UTC) + 400 * DAY
    b = open_bundle(_zip(_posture(), _signer(user)), cas=[CA.cert], now=later)
    assert not b.verification.verified


# -- no traceback for any input: random JSON in any member, through the real command --------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=20),
                    lambda kids: st.lists(kids, max_size=4)
                    | st.dictionaries(st.text(max_size=10), kids, max_size=4), max_leaves=12)


def _graft(doc: Any, path: list[str], value: Any) -> Any:
    """``doc`` with the value at ``path`` (keys, created as needed) replaced by ``value``."""
    if not path:
        return value
    base = dict(doc) if isinstance(doc, dict) else {}
    base[path[0]] = _graft(base.get(path[0]), path[1:], value)
    return base


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(["posture.json", "decision.json", "connectivity.json", "manifest.json"]),
       st.lists(st.sampled_from(["checks", "0", "summary", "remediation", "en", "targets",
                                 "host", "files", "name", "evidence", "dns", "status"]),
                max_size=3),
       JSON, st.booleans(), st.booleans())
def test_no_traceback_for_random_json_anywhere(  # noqa: PLR0917 (one per strategy)
        tmp_path_factory: pytest.TempPathFactory,
        member: str, path: list[str], value: Any,
        rehash: bool, signed: bool) -> None:
    from agent import cli

    tmp = tmp_path_factory.mktemp("fuzz")
    files = {**_posture(), "decision.json": b'{"correlation_id": "abc"}',
             "connectivity.json": b'{"targets": []}'}
    manifest = None
    if member == "manifest.json":
        base = {"schema": 1, "files": [{"name": n, "sha256": hashlib.sha256(d).hexdigest()}
                                       for n, d in files.items()]}
        manifest = _graft(base, path, value)
        manifest = manifest if isinstance(manifest, dict) else {"schema": 1, "files": manifest}
    else:
        doc = json.loads(files[member])
        files[member] = json.dumps(_graft(doc, path, value)).encode()
    data = _zip(files, _signer(issue(CA, "Yamada Taro")) if signed else None, manifest)
    if not rehash:  # the member changed after the manifest was made: tampered
        data = _zip({**files, member: files.get(member, b"{}") + b" "}, None, manifest)
    bundle_file = tmp / "b.zip"
    bundle_file.write_bytes(data)
    ca_file = tmp / "ca.pem"
    ca_file.write_bytes(CA.cert_pem)
    env = {"HOME": str(tmp), "XDG_STATE_HOME": str(tmp / "s"), "XDG_DATA_HOME": str(tmp / "d"),
           "XDG_CONFIG_HOME": str(tmp / "c")}
    saved_env = {k: os.environ.get(k) for k in env}
    handlers = {n: list(logging.getLogger(n).handlers) for n in ("agent", "ui")}
    os.environ.update(env)
    try:
        code = cli.main(["diag", "show", str(bundle_file), "--ca", str(ca_file),
                         "--lang", "en"])
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for name, before in handlers.items():
            for h in list(logging.getLogger(name).handlers):
                if h not in before:
                    logging.getLogger(name).removeHandler(h)
                    h.close()
    assert code in (0, 1, 2), code  # 70 would be an internal error (a traceback in the log)
