"""``byod-agent connect`` end to end, all real: xrdp as the office PC, nginx ``stream`` with mutual
TLS as the city's gateway, xfreerdp under Xvfb, the certificate in a real Secret Service, and for
the downgrade test a real clamd that stops mid-session.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from testkit.gateway import Gateway, free_port, nginx_gateway
from testkit.pki import CA, Pair, issue, make_ca, p12, server_pair
from testkit.procs import stop, wait_for
from tests.conftest import require
from tests.integration import clamd_daemon, secret_service, xrdp_server
from tests.integration.custom_install import agent_process, make_install
from tests.unit.test_policy_support import Signer

pytestmark = [pytest.mark.real, pytest.mark.timeout(180)]
P12_PASSWORD = "e2e-p12-pass"
OFF = ("os_supported", "os_updates", "disk_encryption", "firewall", "screen_lock")


def policy(gateway_port: int, gateway_ca: Pair, pin: str, *, antivirus: str,
           others: str = "off", office_host: str = xrdp_server.OFFICE_HOST,
           grace: int = 4) -> str:
    checks = "".join(f'[checks.{c}]\nenforce = "{others}"\n\n' for c in OFF)
    return f"""id = "e2e-city"
serial = 1
not_before = 2026-01-01T00:00:00+09:00
expires = 2030-01-01T00:00:00+09:00
recheck_interval_minutes = 1

{checks}[checks.antivirus]
enforce = "{antivirus}"

[session]
grace_seconds = {grace}

[[targets]]
id = "office-e2e"
name_ja = "庁内PC（テスト）"
name_en = "Office PC (test)"
mode = "tunnel"
host = "{office_host}"
gateway = "127.0.0.1:{gateway_port}"
require_nla = false
server_cert_sha256 = "{pin}"
gateway_ca = \"\"\"
{gateway_ca.cert_pem.decode().strip()}
\"\"\"
"""


@dataclass
class World:
    xrdp: xrdp_server.Xrdp
    gateway: Gateway
    gateway_ca: Pair
    env: dict[str, str]
    root: Path


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    require(secret_service.available(), "dbus-daemon/gnome-keyring-daemon not installed")
    gw_ca = make_ca("City gateway CA")
    gw = server_pair(gw_ca, "localhost")
    (tmp_path / "xrdp").mkdir()
    (tmp_path / "gw").mkdir()
    with xrdp_server.running(tmp_path / "xrdp") as xrdp, \
            nginx_gateway(tmp_path / "gw", server_chain_pem=gw.cert_pem,
                          server_key_pem=gw.key_pem(), client_ca_pem=CA.cert_pem,
                          routes={xrdp_server.OFFICE_HOST: xrdp.port},
                          default_port=free_port()) as gateway, \
            secret_service.running(tmp_path / "home") as ss, \
            xrdp_server.xvfb(tmp_path) as display:
        env = {**ss.env(), "DISPLAY": display, "BYOD_AGENT_LANG": "en"}
        user = tmp_path / "user.p12"
        user.write_bytes(p12(issue(CA, "Yamada Taro"), P12_PASSWORD.encode(), extra=(CA.cert,)))
        app = make_install(tmp_path / "import", policy(gateway.port, gw_ca, "00" * 32,
                                                       antivirus="off"), Signer())
        imp = agent_process(app, ["cert", "import", str(user), "--password-stdin"], env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
        _out, err = imp.communicate(P12_PASSWORD + "\n", timeout=60)
        assert imp.returncode == 0, err
        yield World(xrdp, gateway, gw_ca, env, tmp_path)


class Events:
    """The JSON lines ``connect --events`` prints, read on a thread so waits have timeouts."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.seen: list[dict[str, Any]] = []
        self._q: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(json.loads(line))
        self._q.put(None)

    def wait_for(self, kind: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self._q.get(timeout=left)
            except queue.Empty:
                break
            if event is None:
                break
            self.seen.append(event)
            if event["event"] == kind:
                return event
        raise AssertionError(f"no {kind!r} event; seen: {self.seen}")


def connect(app: Path, world: World, *extra: str) -> tuple[subprocess.Popen[str], Events]:
    proc = agent_process(app, ["connect", "office-e2e", "--events", "--user", world.xrdp.user,
                               "--password-stdin", *extra], world.env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(world.xrdp.password + "\n")
    proc.stdin.close()
    return proc, Events(proc)


def clients_alive(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True)
                if p.name().startswith("xfreerdp")]
    except psutil.NoSuchProcess:
        return []


def test_session_through_the_gateway_with_every_redirection_off(world: World) -> None:
    app = make_install(world.root / "a", policy(world.gateway.port, world.gateway_ca,
                                                world.xrdp.cert_sha256, antivirus="off",
                                                others="report"), Signer())
    proc, events = connect(app, world)
    try:
        started = events.wait_for("started", 60)
        assert len(started["correlation_id"]) == 8
        wait_for(world.xrdp.logged_in, 30, "the xrdp login")
        wait_for(lambda: f"Session started successfully for user {world.xrdp.user}"
                   in world.xrdp.sesman_log(), 20, "sesman to start the desktop")
        # The session went through the tunnel: xrdp saw nginx (loopback), nginx saw our client
        # certificate and the office PC's name as SNI.
        channels = world.xrdp.channels()
        assert channels, world.xrdp.log()[-2000:]
        assert "cliprdr" not in channels  # no clipboard channel at all
        client = clients_alive(proc.pid)
        assert len(client) == 1
        argv = client[0].cmdline()
        assert "-clipboard" in argv and not any(
            a.startswith(("/drive", "+drives", "+home-drive", "/printer", "/smartcard",
                          "/usb", "/microphone", "/p:")) for a in argv)
        assert world.xrdp.password not in " ".join(argv)  # the password went through stdin
        proc.send_signal(signal.SIGTERM)  # the tray's Disconnect
        ended = events.wait_for("ended", 30)
        assert ended["reason"] == "stopped"
        assert proc.wait(timeout=30) == 0
        assert not client[0].is_running()
    finally:
        stop(proc)  # type: ignore[arg-type]


def test_clipboard_assertion_can_fail(world: World) -> None:
    """Positive control: the same xrdp does list ``cliprdr`` when a client asks for it."""
    proc = subprocess.Popen(
        ["xfreerdp", f"/v:127.0.0.1:{world.xrdp.port}", "/sec:tls", "+clipboard",
         f"/cert:deny,name:{xrdp_server.OFFICE_HOST},fingerprint:sha256:"
         + ":".join(world.xrdp.cert_sha256[i:i + 2] for i in range(0, 64, 2)),
         f"/u:{world.xrdp.user}", "/from-stdin:force"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**world.env, "HOME": str(world.root / "home")})
    try:
        assert proc.stdin is not None
        proc.stdin.write(world.xrdp.password.encode() + b"\n")
        proc.stdin.close()
        wait_for(lambda: "cliprdr" in world.xrdp.channels(), 20, "the cliprdr channel")
    finally:
        stop(proc)  # type: ignore[arg-type]


def test_session_ends_when_antivirus_stops(world: World) -> None:
    require(clamd_daemon.available(), "clamd/sigtool not installed")
    app = make_install(world.root / "b", policy(world.gateway.port, world.gateway_ca,
                                                world.xrdp.cert_sha256, antivirus="block",
                                                grace=4), Signer())
    with clamd_daemon.running_clamd() as (_clamd, clamd_proc):
        proc, events = connect(app, world, "--recheck-seconds", "2")
        try:
            events.wait_for("started", 60)
            wait_for(world.xrdp.logged_in, 30, "the xrdp login")
            client = clients_alive(proc.pid)
            assert len(client) == 1
            stopped_at = time.monotonic()
            stop(clamd_proc)
            warned = events.wait_for("noncompliant", 30)
            assert warned["grace_seconds"] == 4
            assert any("antivirus" in r["en"].lower() or "virus" in r["en"].lower()
                       for r in warned["reasons"]), warned
            assert warned["message"]["ja"] and warned["message"]["en"]
            ended = events.wait_for("ended", 30)
            took = time.monotonic() - stopped_at
            assert ended["reason"] == "noncompliant"
            assert proc.wait(timeout=30) == 3
            # recheck (2 s) + one evaluation + grace (4 s), with room for a slow machine
            assert took < 25, took
            assert not client[0].is_running()
        finally:
            stop(proc)  # type: ignore[arg-type]
    log = (world.root / "home" / ".local" / "state" / "byod-agent" / "log" / "agent.log")
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    ended_lines = [x for x in lines if "session ended by the agent" in x.get("message", "")]
    assert ended_lines and ended_lines[-1].get("correlation_id") == ended["correlation_id"]


def test_office_pc_off_and_foreign_gateway_name_the_step(world: World) -> None:
    off = make_install(world.root / "c", policy(world.gateway.port, world.gateway_ca,
                                                world.xrdp.cert_sha256, antivirus="off",
                                                office_host="asleep.city.test"), Signer())
    proc, events = connect(off, world)
    error = events.wait_for("error", 60)
    assert error["step"] == "office_unreachable", error
    assert "switched off" in error["message"]["en"] and "電源" in error["message"]["ja"]
    assert proc.wait(timeout=30) == 4
    foreign = make_install(world.root / "d", policy(world.gateway.port, make_ca("Other CA"),
                                                    world.xrdp.cert_sha256, antivirus="off"),
                           Signer())
    proc, events = connect(foreign, world)
    assert events.wait_for("error", 60)["step"] == "tls"
    assert proc.wait(timeout=30) == 4
    assert not world.xrdp.logged_in()  # nothing reached the office PC
