"""Both shipped gateway configurations start as shipped; nginx stream admits by credential only.

HAProxy is started from installer/gateway/haproxy.cfg by every test in test_gateway_real.py;
here it is also checked with ``haproxy -c``. nginx (admission only) runs from a byte-identical
copy of installer/gateway/nginx-stream-posture.conf in the gateway directory, as its header says.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.verifier import User, load_user
from tests.conftest import require
from verifier import demo, pki
from verifier.assign import parse_csv
from verifier.gateway import nginx_map_text

pytestmark = pytest.mark.real
NGINX_CFG = demo.REPO / "installer" / "gateway" / "nginx-stream-posture.conf"


def test_shipped_haproxy_config_is_valid(tmp_path: Path) -> None:
    require(shutil.which("haproxy") is not None, "haproxy (apt haproxy)")
    lay = demo.layout(tmp_path / "gw")
    out = subprocess.run(["haproxy", "-c", "-f", str(demo.HAPROXY_CFG), "-f",
                          str(lay.dir / "backends.cfg")], env=demo.haproxy_env(lay),
                         capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture
def nginx_gw(tmp_path: Path) -> Iterator[tuple[demo.Layout, dict[str, demo.EchoPC]]]:
    require(shutil.which("nginx") is not None and
            Path("/usr/lib/nginx/modules/ngx_stream_module.so").exists(),
            "nginx with libnginx-mod-stream")
    lay = demo.layout(tmp_path / "gw")
    shutil.copyfile(NGINX_CFG, lay.dir / "nginx-stream-posture.conf")
    (lay.dir / "listen.conf").write_text(f"listen 127.0.0.1:{lay.gateway_port} ssl;\n")
    rows = parse_csv((lay.dir / "users.csv").read_text())
    (lay.dir / "users-nginx.map").write_text(nginx_map_text(rows))
    pcs = {pc: demo.EchoPC(pc, port).start() for pc, port in lay.pc_ports.items()}
    log = (lay.dir / "nginx.log").open("wb")
    proc = subprocess.Popen(["nginx", "-c", str(lay.dir / "nginx-stream-posture.conf"), "-p",
                             str(lay.dir) + "/"], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        demo.wait_port(lay.gateway_port, 15, proc, "nginx")
        yield lay, pcs
    finally:
        demo.stop_process(proc, 3)  # SIGQUIT: graceful stop
        for pc in pcs.values():
            pc.stop()


def credential(lay: demo.Layout, user: User, pc: str, *, expired: bool = False) -> str:
    passphrase = (lay.dir / "posture-ca.pass").read_text().strip().encode()
    ca = pki.PostureCA.load(lay.dir / "posture-ca.pem", lay.dir / "posture-ca.key", passphrase)
    now = dt.datetime.now(dt.UTC) - (dt.timedelta(hours=1) if expired else dt.timedelta())
    return pki.pem(ca.issue(user.key.public_key(), user.name, pc, now,
                            dt.timedelta(minutes=10))).decode()


def connect(lay: demo.Layout, user: User, cert_pem: str | None, sni: str = "localhost") -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(lay.dir / "city-ca.pem"))
    ctx.check_hostname = False
    path = lay.dir / f"client-{user.name}.pem"
    if cert_pem is not None:
        pki.write_private(path, cert_pem.encode() + pki.key_pem(user.key))
        ctx.load_cert_chain(str(path))
    else:
        ctx.load_cert_chain(str(user.identity.cert_path), str(user.identity.key_path),
                            password=lambda: user.identity.passphrase)
    try:
        raw = socket.create_connection(("127.0.0.1", lay.gateway_port), timeout=5)
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            s.settimeout(5)
            return s.recv(100)
    except (ssl.SSLError, ConnectionResetError):
        return b""
    finally:
        path.unlink(missing_ok=True)


def test_nginx_admits_only_a_posture_credential_to_the_assigned_pc(
        nginx_gw: tuple[demo.Layout, dict[str, demo.EchoPC]], tmp_path: Path) -> None:
    lay, pcs = nginx_gw
    a, b = load_user(lay, "userA", tmp_path), load_user(lay, "userB", tmp_path)
    assert connect(lay, a, credential(lay, a, "pcA")) == b"pcA\n"
    assert connect(lay, b, credential(lay, b, "pcB")) == b"pcB\n"
    assert connect(lay, a, credential(lay, a, "pcA"), sni="pcB") == b"pcA\n"  # never SNI
    assert connect(lay, a, None) == b""  # the long-lived user certificate alone
    assert connect(lay, a, credential(lay, a, "pcA", expired=True)) == b""
    assert connect(lay, a, credential(lay, a, "pcB")) == b""  # not A's assignment
    assert pcs["pcB"].count("open") == 1 and pcs["pcA"].count("open") == 2
    log = (lay.dir / "nginx.log").read_text()
    assert "certificate has expired" in log

