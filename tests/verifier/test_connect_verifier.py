"""``byod-agent connect`` with a policy that has ``[verifier]``, all real: the agent (an installed
copy, its certificate in a real Secret Service), byod-verifier, HAProxy from the shipped config,
xrdp as the user's office PC, xfreerdp under Xvfb. The agent gets its posture credential before
the tunnel opens; without a verifier it does not open the tunnel at all (fail closed).
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from testkit.procs import stop, wait_for
from testkit.verifier import load_user
from tests.conftest import require
from tests.integration import secret_service, xrdp_server
from tests.integration.custom_install import agent_process, make_install
from tests.integration.test_session_e2e import Events, clients_alive
from tests.unit.test_policy_support import Signer
from verifier import demo, pki
from verifier.db import Assignment
from verifier.gateway import backends_text

pytestmark = [pytest.mark.real, pytest.mark.timeout(240)]
CHECKS = ("os_supported", "os_updates", "disk_encryption", "antivirus", "firewall", "screen_lock")


def policy(lay: demo.Layout, pin: str) -> str:
    ca = (lay.dir / "city-ca.pem").read_text().strip()
    checks = "".join(f'[checks.{c}]\nenforce = "report"\n\n' for c in CHECKS)
    return f"""id = "{demo.POLICY_ID}"
serial = {demo.POLICY_SERIAL}
not_before = 2026-01-01T00:00:00+09:00
expires = 2030-01-01T00:00:00+09:00
recheck_interval_minutes = 1

{checks}[session]
grace_seconds = 4

[verifier]
url = "https://127.0.0.1:{lay.verifier_port}"
ca = \"\"\"
{ca}
\"\"\"

[[targets]]
id = "office"
name_ja = "庁内PC（テスト）"
name_en = "Office PC (test)"
mode = "tunnel"
host = "{xrdp_server.OFFICE_HOST}"
gateway = "127.0.0.1:{lay.gateway_port}"
require_nla = false
server_cert_sha256 = "{pin}"
gateway_ca = \"\"\"
{ca}
\"\"\"
"""


@dataclass
class World:
    lay: demo.Layout
    app: Path
    env: dict[str, str]
    xrdp: xrdp_server.Xrdp
    verifier: subprocess.Popen[bytes]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    require(shutil.which("haproxy") is not None, "haproxy (apt haproxy)")
    require(secret_service.available(), "dbus-daemon/gnome-keyring-daemon not installed")
    lay = demo.layout(tmp_path / "city")
    (tmp_path / "xrdp").mkdir()
    with xrdp_server.running(tmp_path / "xrdp") as xrdp, \
            secret_service.running(tmp_path / "home") as ss, \
            xrdp_server.xvfb(tmp_path) as display:
        pin = ":".join(xrdp.cert_sha256[i:i + 2] for i in range(0, 64, 2))
        text = policy(lay, pin)
        signer = Signer()
        for old in (lay.dir / "trust").glob("*.pub"):  # the verifier trusts this city's key only
            old.unlink()
        signer.write_pub(lay.dir / "trust")
        signer.write(lay.dir / "policy" / "policy.toml", text)
        rows = [Assignment("userA", "pcA", "127.0.0.1", xrdp.port),
                Assignment("userB", "pcB", "127.0.0.1", demo.free_port())]
        (lay.dir / "users.csv").write_text(
            "user,pc,host,port\n" + "".join(f"{a.user},{a.pc_id},{a.host},{a.port}\n"
                                            for a in rows))
        (lay.dir / "backends.cfg").write_text(backends_text(rows))
        haproxy = demo.start_haproxy(lay)
        verifier = demo.start_verifier(lay)
        try:
            env = {**ss.env(), "DISPLAY": display, "BYOD_AGENT_LANG": "en"}
            app = make_install(tmp_path / "install", text, signer)
            p12 = lay.users["userA"]
            imp = agent_process(app, ["cert", "import", p12["p12"], "--password-stdin"], env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
            _out, err = imp.communicate(Path(p12["password_file"]).read_text(), timeout=60)
            assert imp.returncode == 0, err
            yield World(lay, app, env, xrdp, verifier)
        finally:
            demo.stop_process(verifier)
            demo.stop_process(haproxy)


def connect(w: World) -> tuple[subprocess.Popen[str], Events]:
    proc = agent_process(w.app, ["connect", "office", "--events", "--user", w.xrdp.user,
                                 "--password-stdin"], w.env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(w.xrdp.password + "\n")
    proc.stdin.close()
    return proc, Events(proc)


def verifier_log(w: World) -> str:
    return (w.lay.dir / "verifier.log").read_text(errors="replace")


def test_connect_gets_a_credential_and_reaches_its_own_office_pc(world: World) -> None:
    """The tunnel opens only with the posture credential, and HAProxy routes it to userA's PC.
    (The RDP login itself is test_session_e2e's subject; here the gateway's log is the proof.)"""
    proc, events = connect(world)
    try:
        try:
            started = events.wait_for("started", 90)
        except AssertionError as exc:
            stop(proc)  # type: ignore[arg-type]
            err = proc.stderr.read() if proc.stderr is not None else ""
            raise AssertionError(f"{exc}\nagent stderr: {err[-3000:]}\nverifier: "
                                 f"{verifier_log(world)[-1500:]}") from None
        log = verifier_log(world)
        assert "attest allowed" in log and "user=userA pc=pcA" in log, log[-2000:]
        gw = world.lay.dir / "haproxy.log"
        routed = wait_for(lambda: [line for line in gw.read_text(errors="replace").splitlines()
                                   if "be_pcA/pcA" in line and "cn=userA ou=pcA" in line],
                          30, "the tunnel's connection routed to pcA")
        assert routed, gw.read_text()[-2000:]
        assert len(clients_alive(proc.pid)) == 1
        assert started["correlation_id"]
    finally:
        stop(proc)  # type: ignore[arg-type]


def test_connect_without_a_reachable_verifier_opens_nothing(world: World) -> None:
    demo.stop_process(world.verifier)
    proc, events = connect(world)
    try:
        error = events.wait_for("error", 90)
        assert error["step"] == "verifier_unreachable", error
        assert error["message"]["ja"] and error["message"]["en"]
        assert proc.wait(timeout=30) == 4
        assert not world.xrdp.logged_in()
    finally:
        stop(proc)  # type: ignore[arg-type]



def test_a_revocation_mid_session_ends_it_at_the_gateway_and_in_the_agent(world: World) -> None:
    proc = agent_process(world.app, ["connect", "office", "--events", "--user", world.xrdp.user,
                                     "--password-stdin", "--recheck-seconds", "2"], world.env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(world.xrdp.password + "\n")
    proc.stdin.close()
    events = Events(proc)
    try:
        events.wait_for("started", 90)
        d = world.lay.dir
        ca = x509.load_pem_x509_certificate((d / "city-ca.pem").read_bytes())
        key = serialization.load_pem_private_key((d / "city-ca.key").read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        serial = load_user(world.lay, "userA", d).cert.serial_number
        (d / "city-crl.pem").write_bytes(pki.crl_pem(pki.make_crl(
            ca, key, [serial], dt.datetime.now(dt.UTC))))
        warned = events.wait_for("noncompliant", 30)  # the agent's re-check heard the refusal
        assert warned["reasons"], warned
        ended = events.wait_for("ended", 30)
        # Whichever comes first ends it: the gateway's cut (the tunnel's connection closes:
        # an error step, exit 4) or the agent's own countdown (noncompliant, exit 3).
        code = proc.wait(timeout=30)
        assert (ended["reason"], code) in (("noncompliant", 3), ("error", 4)), events.seen
        log = verifier_log(world)
        assert "session cut user=userA pc=pcA reason=cert_revoked" in log, log[-2000:]
    finally:
        stop(proc)  # type: ignore[arg-type]
