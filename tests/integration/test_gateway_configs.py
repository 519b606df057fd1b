"""installer/gateway/nginx-stream.conf and stunnel.conf started from the repository as shipped.

Only the documented placeholders are substituted (paths, the listen port, the office PC line).
The files they read come from the real `byod-admin gateway-certs` (init, staff from a CSR made
like the agent makes one, revoke). Through each: a session carries bytes to an echo "office PC";
the agent's own preflight (agent.session.tunnel) reports a revoked certificate as refused
(step gateway_refused), and, for nginx, an office PC that is down as office_unreachable.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.session.tunnel import TunnelError, connect_gateway, preflight
from tests.conftest import REPO, require_tool

pytestmark = [pytest.mark.real, pytest.mark.timeout(120)]
GATEWAY = REPO / "installer" / "gateway"
PAYLOAD = b"\x03\x00\x00\x14 hello office PC"  # an RDP client speaks first (TPKT)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _admin(*argv: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from admin.cli import main; sys.exit(main())"
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                         text=True, cwd=REPO, timeout=60, check=False,
                         env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                              "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stdout + out.stderr
    return out


class Staff:
    def __init__(self, root: Path, d: Path, cn: str, passfile: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
               .sign(key, hashes.SHA256()))
        (root / f"{cn}.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
        self.cert = root / f"{cn}.pem"
        _admin("gateway-certs", "staff", "--dir", str(d), "--csr", str(root / f"{cn}.csr"),
               "--out", str(self.cert), "--passphrase-file", str(passfile))
        self.key = root / f"{cn}.key"  # a throwaway test key in the test's own tmp dir
        self.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        self.key.chmod(0o600)

    def context(self, ca: Path) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False  # the tunnel checks the gateway's name itself
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(str(ca))
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("gw")
    etc = root / "etc"
    passfile = root / "pass"
    passfile.write_text("correct horse battery staple\n")
    passfile.chmod(0o600)
    _admin("gateway-certs", "init", "--dir", str(etc), "--gateway-name", "localhost",
           "--passphrase-file", str(passfile))
    good = Staff(root, etc, "user-0123", passfile)
    lost = Staff(root, etc, "user-0123-lost", passfile)  # the same user's lost laptop
    out = _admin("gateway-certs", "revoke", "--dir", str(etc), str(lost.cert),
                 "--passphrase-file", str(passfile))
    assert "kill -HUP" in out.stdout
    assert (etc / "gateway.key").stat().st_mode & 0o077 == 0
    assert b"ENCRYPTED" in (etc / "staff-ca.key").read_bytes()
    return {"root": root, "etc": etc, "good": good, "lost": lost}


@pytest.fixture
def echo() -> Iterator[int]:
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    while data := conn.recv(65536):
                        conn.sendall(data)
                except OSError:
                    pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield int(srv.getsockname()[1])
    stop.set()
    t.join(2)
    srv.close()


def _shipped(name: str, root: Path, etc: Path, port: int, office: int) -> Path:
    run, log = root / "run", root / "log"
    run.mkdir(exist_ok=True)
    log.mkdir(exist_ok=True)
    text = (GATEWAY / name).read_text()
    listen = ("listen 443 ssl", f"listen 127.0.0.1:{port} ssl") if name.startswith("nginx") \
        else ("accept = 443", f"accept = 127.0.0.1:{port}")
    subs = [("/etc/byod-gateway", str(etc)), ("/run/byod-gateway", str(run)),
            ("10.1.2.3:3389", f"127.0.0.1:{office}"), listen]
    if name.startswith("nginx"):
        subs += [("/var/log/byod-gateway", str(log)),
                 ("127.0.0.1:9441", f"127.0.0.1:{_free_port()}"),
                 ("127.0.0.1:9442", f"127.0.0.1:{_free_port()}")]
    for old, new in subs:
        assert old in text, f"{name}: documented placeholder {old!r} is gone"
        text = text.replace(old, new)
    out = root / name
    out.write_text(text)
    return out


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("gateway did not listen")


def _start(kind: str, pki: dict[str, object], office: int, tmp: Path
           ) -> tuple[subprocess.Popen[bytes], int, Path]:
    root, etc = tmp, pki["etc"]
    assert isinstance(etc, Path)
    port = _free_port()
    log = tmp / f"{kind}.out"
    if kind == "nginx":
        require_tool("nginx")
        conf = _shipped("nginx-stream.conf", root, etc, port, office)
        argv = ["nginx", "-e", "stderr", "-c", str(conf)]
    else:
        require_tool("stunnel4")
        conf = _shipped("stunnel.conf", root, etc, port, office)
        argv = ["stunnel4", str(conf)]
    with log.open("wb") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT)
    _wait_port(port, proc, log)
    return proc, port, log


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def _session(port: int, ctx: ssl.SSLContext) -> bytes:
    reader, writer = await connect_gateway("127.0.0.1", port, "pc-0123.office.city.example",
                                           ctx, timeout=5, verify_name="localhost")
    writer.write(PAYLOAD)
    await writer.drain()
    got = await asyncio.wait_for(reader.readexactly(len(PAYLOAD)), 5)
    writer.close()
    return got


@pytest.mark.parametrize("kind", ["nginx", "stunnel"])
def test_shipped_gateway_carries_a_session_and_refuses_a_revoked_certificate(
        kind: str, pki: dict[str, object], echo: int, tmp_path: Path) -> None:
    if shutil.which("nginx" if kind == "nginx" else "stunnel4") is None:
        pytest.skip(f"{kind} not installed")
    ca = pki["etc"] / "staff-ca.pem"  # type: ignore[operator]
    good, lost = pki["good"], pki["lost"]
    assert isinstance(good, Staff) and isinstance(lost, Staff)
    proc, port, log = _start(kind, pki, echo, tmp_path)
    try:
        assert asyncio.run(_session(port, good.context(ca))) == PAYLOAD
        asyncio.run(preflight("127.0.0.1", port, "pc-0123.office.city.example",
                              good.context(ca), timeout=5, verify_name="localhost",
                              eof_means_refused=kind == "nginx"))
        with pytest.raises(TunnelError) as info:
            asyncio.run(preflight("127.0.0.1", port, "pc-0123.office.city.example",
                                  lost.context(ca), timeout=5, verify_name="localhost",
                                  eof_means_refused=kind == "nginx"))
        assert info.value.step == "gateway_refused", info.value.detail
    finally:
        _stop(proc)
    assert "revoked" in log.read_text(errors="replace") or kind == "stunnel" \
        or "revoked" in (tmp_path / "log" / "nginx-error.log").read_text(errors="replace")


def test_nginx_says_office_pc_down_instead_of_a_silent_close(
        pki: dict[str, object], tmp_path: Path) -> None:
    if shutil.which("nginx") is None:
        pytest.skip("nginx not installed")
    ca = pki["etc"] / "staff-ca.pem"  # type: ignore[operator]
    good = pki["good"]
    assert isinstance(good, Staff)
    proc, port, _ = _start("nginx", pki, _free_port(), tmp_path)  # nothing listens there
    try:
        with pytest.raises(TunnelError) as info:
            asyncio.run(preflight("127.0.0.1", port, "pc-0123.office.city.example",
                                  good.context(ca), timeout=5, verify_name="localhost",
                                  eof_means_refused=True, listen=3.0))
        assert info.value.step == "office_unreachable", info.value.detail
    finally:
        _stop(proc)
