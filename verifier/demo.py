"""``byod-verifier demo --dir DIR``: a whole city side on loopback, for IT, the tests and bench.

``layout()`` writes the files (PKI, DEMO-signed policy, assignments, verifier.toml, the shipped
HAProxy configuration's inputs); ``start()`` runs the verifier, a real HAProxy and two office-PC
stand-ins (TCP echo servers that record when a connection opens and closes) and returns a
``Demo`` whose ``stop()`` ends them all. Every piece is a function so tests can vary one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.policy import signing
from verifier import pki
from verifier.assign import to_csv
from verifier.db import Assignment
from verifier.gateway import backends_text, map_text

REPO = Path(__file__).resolve().parent.parent
HAPROXY_CFG = REPO / "installer" / "gateway" / "haproxy.cfg"
USERS = ("userA", "userB")
PCS = {"userA": "pcA", "userB": "pcB"}
POLICY_ID = "demo-verifier"
POLICY_SERIAL = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None,
              what: str = "service") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not listening on {port} after {timeout} s")


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM,
                 timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# -- office PC stand-in ------------------------------------------------------------------------

@dataclass
class EchoPC:
    """A TCP echo server; ``events`` records ("open"|"closed", peer port, time)."""

    name: str
    port: int
    events: list[tuple[str, int, float]] = field(default_factory=list)
    _sock: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> EchoPC:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        s.settimeout(0.2)
        self._sock = s
        threading.Thread(target=self._accept, name=f"echo-{self.name}", daemon=True).start()
        return self

    def _note(self, kind: str, port: int) -> None:
        with self._lock:
            self.events.append((kind, port, time.monotonic()))

    def _accept(self) -> None:
        sock = self._sock
        while sock is not None and not self._stop.is_set():
            try:
                conn, addr = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, addr[1]), daemon=True).start()

    def _serve(self, conn: socket.socket, port: int) -> None:
        self._note("open", port)
        greeting = f"{self.name}\n".encode()
        with conn:
            try:
                conn.sendall(greeting)  # says which PC answered: the tests check routing
                while not self._stop.is_set():
                    data = conn.recv(65536)
                    if not data:
                        break
                    conn.sendall(data)
            except OSError:
                pass
        self._note("closed", port)

    def count(self, kind: str) -> int:
        with self._lock:
            return sum(1 for e in self.events if e[0] == kind)

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()


# -- layout ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    dir: Path
    verifier_port: int
    gateway_port: int
    pc_ports: dict[str, int]
    config: Path
    users: dict[str, dict[str, str]]  # user -> {p12, password_file}

    def info(self) -> dict[str, Any]:
        d = self.dir
        return {
            "verifier_url": f"https://127.0.0.1:{self.verifier_port}",
            "gateway": f"127.0.0.1:{self.gateway_port}",
            "office_pcs": {pc: f"127.0.0.1:{p}" for pc, p in self.pc_ports.items()},
            "config": str(self.config), "city_ca": str(d / "city-ca.pem"),
            "verifier_ca": str(d / "city-ca.pem"), "posture_ca": str(d / "posture-ca.pem"),
            "gateway_ca": str(d / "city-ca.pem"), "policy": str(d / "policy" / "policy.toml"),
            "trust_dir": str(d / "trust"), "users": self.users,
            "verifier_log": str(d / "verifier.log"), "gateway_log": str(d / "haproxy.log"),
            "haproxy_socket": str(d / "admin.sock"),
        }


def policy_text(serial: int, recheck_minutes: int = 1, verifier_url: str | None = None,
                verifier_ca_pem: str | None = None) -> str:
    checks = "".join(f'[checks.{c}]\nenforce = "block"\non_unknown = "block"\n\n' for c in (
        "os_supported", "os_updates", "disk_encryption", "antivirus", "firewall", "screen_lock"))
    return (f'# DEMO policy for byod-verifier demo (signed by a DEMO key thrown away after).\n'
            f'id = "{POLICY_ID}"\nserial = {serial}\n'
            f'description = "DEMO: verifier demo policy"\n'
            f'not_before = 2026-01-01T00:00:00+09:00\nexpires = 2031-03-31T23:59:59+09:00\n'
            f'recheck_interval_minutes = {recheck_minutes}\n\n{checks}'
            f'[session]\ngrace_seconds = 30\n' + (
                f'\n[verifier]\nurl = "{verifier_url}"\nca = """\n{verifier_ca_pem}"""\n'
                if verifier_url and verifier_ca_pem else ""))


def sign_policy(directory: Path, text: str) -> Path:
    """A fresh DEMO key signs the policy; its public half is the only anchor; it is discarded."""
    key = Ed25519PrivateKey.generate()
    (directory / "trust").mkdir(parents=True, exist_ok=True)
    (directory / "trust" / "verifier-demo-DEMO.pub").write_bytes(
        signing.public_key_pem(key.public_key()))
    pol = directory / "policy"
    pol.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    (pol / "policy.toml").write_bytes(data)
    (pol / "policy.toml.sig").write_bytes(signing.sign(data, key))
    return pol / "policy.toml"


def layout(directory: Path, *, recheck_seconds: int | None = None,
           grace_seconds: int | None = None, credential_minutes: float = 10.0,
           database_url: str | None = None, enforce_tick_seconds: float = 1.0,
           policy_serial: int = POLICY_SERIAL) -> Layout:
    d = directory.resolve()
    d.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    city, city_key = pki.make_ca("BYOD DEMO city CA", now)
    posture, posture_key = pki.make_ca("BYOD DEMO posture CA", now)
    (d / "city-ca.pem").write_bytes(pki.pem(city))
    pki.write_private(d / "city-ca.key", pki.key_pem(city_key))  # for revocations in the demo
    (d / "posture-ca.pem").write_bytes(pki.pem(posture))
    passphrase = secrets.token_urlsafe(24).encode()
    pki.write_private(d / "posture-ca.pass", passphrase + b"\n")
    pki.write_private(d / "posture-ca.key", pki.key_pem(posture_key, passphrase))
    (d / "city-crl.pem").write_bytes(pki.crl_pem(pki.make_crl(city, city_key, [], now)))
    (d / "posture-crl.pem").write_bytes(pki.crl_pem(pki.make_crl(posture, posture_key, [], now)))
    vcert, vkey = pki.issue_leaf(city, city_key, "localhost", now=now, server=True)
    (d / "verifier.pem").write_bytes(pki.pem(vcert))
    pki.write_private(d / "verifier.key", pki.key_pem(vkey))
    gcert, gkey = pki.issue_leaf(city, city_key, "localhost", now=now, server=True)
    pki.write_private(d / "gw.pem", pki.pem(gcert) + pki.key_pem(gkey))
    users: dict[str, dict[str, str]] = {}
    for user in USERS:
        cert, key = pki.issue_leaf(city, city_key, user, now=now)
        password = secrets.token_urlsafe(12)
        pki.write_private(d / f"{user}.p12", pki.p12(user, cert, key, city, password.encode()))
        pki.write_private(d / f"{user}.password", password.encode() + b"\n")
        users[user] = {"p12": str(d / f"{user}.p12"), "password_file": str(d / f"{user}.password"),
                       "pc": PCS[user]}
    vport, gport = free_port(), free_port()
    sign_policy(d, policy_text(policy_serial, verifier_url=f"https://127.0.0.1:{vport}",
                               verifier_ca_pem=pki.pem(city).decode("ascii")))
    pc_ports = {PCS[u]: free_port() for u in USERS}
    assignments = [Assignment(u, PCS[u], "127.0.0.1", pc_ports[PCS[u]]) for u in USERS]
    (d / "users.csv").write_text(to_csv(assignments), encoding="utf-8")
    (d / "backends.cfg").write_text(backends_text(assignments), encoding="utf-8")
    (d / "users.map").write_text(map_text([]), encoding="utf-8")
    db = database_url or f"sqlite:///{d / 'verifier.sqlite3'}"
    lines = [
        "# byod-verifier configuration (DEMO). Every key: docs/verifier.md.",
        f'listen = "127.0.0.1:{vport}"',
        'tls_cert = "verifier.pem"', 'tls_key = "verifier.key"',
        'city_ca = "city-ca.pem"', 'crl = ["city-crl.pem"]',
        'posture_ca_cert = "posture-ca.pem"', 'posture_ca_key = "posture-ca.key"',
        'posture_ca_key_passphrase_file = "posture-ca.pass"',
        f"credential_minutes = {credential_minutes}",
        f"database_url = {json.dumps(db)}",
        'trust_dir = "trust"', 'policy = "policy/policy.toml"',
        f"enforce_tick_seconds = {enforce_tick_seconds}",
    ]
    if recheck_seconds is not None:
        lines.append(f"recheck_seconds = {recheck_seconds}")
    if grace_seconds is not None:
        lines.append(f"grace_seconds = {grace_seconds}")
    lines += ["", "[gateway]", f'admin_socket = "{d / "admin.sock"}"',
              f'map_file = "{d / "users.map"}"', f'backends_file = "{d / "backends.cfg"}"', ""]
    config = d / "verifier.toml"
    config.write_text("\n".join(lines), encoding="utf-8")
    lay = Layout(d, vport, gport, pc_ports, config, users)
    (d / "layout.json").write_text(json.dumps({  # for helper processes (tests, bench)
        "dir": str(d), "verifier_port": vport, "gateway_port": gport, "pc_ports": pc_ports,
        "config": str(config), "users": users}), encoding="utf-8")
    return lay


# -- running -----------------------------------------------------------------------------------

def python_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                     else "")
    return env


def start_verifier(lay: Layout, timeout: float = 30.0) -> subprocess.Popen[bytes]:
    """``python -m verifier serve``; its log (stdout and stderr) is DIR/verifier.log."""
    subprocess.run([sys.executable, "-m", "verifier", "assign", "import", "--config",
                    str(lay.config), str(lay.dir / "users.csv")], check=True,
                   env=python_env(), capture_output=True, timeout=60)
    log = (lay.dir / "verifier.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "verifier", "serve", "--config",
                             str(lay.config)], stdout=log, stderr=subprocess.STDOUT,
                            env=python_env(), cwd=lay.dir)
    log.close()
    wait_port(lay.verifier_port, timeout, proc, "byod-verifier")
    return proc


def haproxy_env(lay: Layout) -> dict[str, str]:
    return {**os.environ, "BYOD_GW_DIR": str(lay.dir),
            "BYOD_GW_BIND": f"127.0.0.1:{lay.gateway_port}"}


def start_haproxy(lay: Layout, timeout: float = 15.0) -> subprocess.Popen[bytes]:
    """The shipped installer/gateway/haproxy.cfg, unmodified, plus the generated backends."""
    exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
    argv = [exe, "-db", "-f", str(HAPROXY_CFG), "-f", str(lay.dir / "backends.cfg")]
    check = subprocess.run([*argv[:1], "-c", *argv[2:]], check=False, env=haproxy_env(lay),
                           capture_output=True, timeout=30)
    if check.returncode != 0:
        raise RuntimeError("haproxy -c: " + check.stdout.decode()[-2000:] +
                           check.stderr.decode()[-2000:])
    # RECIPES.md trap: `log stdout` makes fd 1 non-blocking: a new file, not appended to.
    log = (lay.dir / "haproxy.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=haproxy_env(lay))
    log.close()
    wait_port(lay.gateway_port, timeout, proc, "haproxy")
    deadline = time.monotonic() + timeout
    while not (lay.dir / "admin.sock").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("haproxy admin socket missing")
        time.sleep(0.05)
    return proc


@dataclass
class Demo:
    layout: Layout
    verifier: subprocess.Popen[bytes]
    haproxy: subprocess.Popen[bytes]
    pcs: dict[str, EchoPC]

    def info(self) -> dict[str, Any]:
        return {**self.layout.info(), "pids": {"verifier": self.verifier.pid,
                                               "haproxy": self.haproxy.pid}}

    def restart_verifier(self) -> None:
        stop_process(self.verifier)
        self.verifier = start_verifier(self.layout)

    def stop(self) -> None:
        stop_process(self.verifier)
        stop_process(self.haproxy, signal.SIGTERM)
        for pc in self.pcs.values():
            pc.stop()


def start(lay: Layout) -> Demo:
    pcs = {pc: EchoPC(pc, port).start() for pc, port in lay.pc_ports.items()}
    started: list[subprocess.Popen[bytes]] = []
    try:
        haproxy = start_haproxy(lay)
        started.append(haproxy)
        verifier = start_verifier(lay)
    except BaseException:
        for p in started:
            stop_process(p)
        for pc in pcs.values():
            pc.stop()
        raise
    return Demo(lay, verifier, haproxy, pcs)


def run_demo(directory: Path, **kwargs: Any) -> int:
    """The CLI command: lay out, start, print one JSON line, run until SIGINT/SIGTERM."""
    demo = start(layout(directory, **kwargs))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_a: stop.set())
    print(json.dumps(demo.info(), ensure_ascii=False), flush=True)
    try:
        while not stop.is_set():
            if demo.verifier.poll() is not None or demo.haproxy.poll() is not None:
                print(json.dumps({"error": "a component exited", "verifier":
                                  demo.verifier.poll(), "haproxy": demo.haproxy.poll()}),
                      file=sys.stderr)
                return 1
            stop.wait(0.5)
    finally:
        demo.stop()
    return 0
