"""A real city gateway for tests: nginx ``stream`` with mutual TLS in front of a TCP service.

nginx maps the SNI name to the backend, as the reference configuration in installer/gateway does.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require, require_tool

STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {port}") from None
            time.sleep(0.05)


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with contextlib.suppress(OSError):
            while data := self.request.recv(262144):
                self.request.sendall(data)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextlib.contextmanager
def echo_server() -> Iterator[int]:
    srv = EchoServer(("127.0.0.1", 0), _Echo)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


@dataclass(frozen=True)
class Gateway:
    port: int
    root: Path

    def log(self) -> str:
        p = self.root / "error.log"
        return p.read_text(errors="replace") if p.exists() else ""


def stream_conf(root: Path, port: int, routes: dict[str, int], default_port: int) -> str:
    mapping = "\n".join(f"        {name} 127.0.0.1:{p};" for name, p in routes.items())
    return f"""load_module {STREAM_MODULE};
daemon off;
master_process on;
worker_processes 1;
user root;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 256; }}
stream {{
    map $ssl_server_name $office_pc {{
{mapping}
        default 127.0.0.1:{default_port};
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {root}/server.pem;
        ssl_certificate_key {root}/server.key;
        ssl_client_certificate {root}/client-ca.pem;
        ssl_verify_client on;
        ssl_protocols TLSv1.2 TLSv1.3;
        proxy_pass $office_pc;
    }}
}}
"""


@contextlib.contextmanager
def nginx_gateway(root: Path, *, server_chain_pem: bytes, server_key_pem: bytes,
                  client_ca_pem: bytes, routes: dict[str, int],
                  default_port: int) -> Iterator[Gateway]:
    require_tool("nginx")
    require(STREAM_MODULE.exists(), "nginx stream module (libnginx-mod-stream) not installed")
    (root / "server.pem").write_bytes(server_chain_pem)
    (root / "server.key").write_bytes(server_key_pem)  # the test gateway's own key, outside HOME
    (root / "server.key").chmod(0o600)
    (root / "client-ca.pem").write_bytes(client_ca_pem)
    port = free_port()
    (root / "nginx.conf").write_text(stream_conf(root, port, routes, default_port))
    with running_nginx(root, port):
        yield Gateway(port, root)


@contextlib.contextmanager
def running_nginx(root: Path, port: int) -> Iterator[None]:
    """nginx in the foreground on ``root/nginx.conf``, until the block ends (graceful SIGQUIT)."""
    require_tool("nginx")
    proc = subprocess.Popen(["nginx", "-c", str(root / "nginx.conf"), "-p", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        try:
            wait_port(port, proc)
        except RuntimeError:
            err = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"nginx did not start: {err}")
        yield
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful stop, as nginx documents
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
