"""One remote session from start to end: tunnel, client, continuous compliance, clean-up.

Synchronous on purpose: the CLI runs it in the foreground and the tray runs the CLI as a child
process reading its events (docs/session.md), so a session outlives neither its monitor nor the
tunnel, and the tray's UI thread never waits on it.

Every step that can fail says which one in an ``error`` event (``resolve``, ``tcp``, ``tls``,
``gateway_refused``, ``office_unreachable``, ``client_missing``, ``client_failed``). Events are
``agent.session.events.SessionEvent`` values, the one protocol the tray parses; the caller prints
them (JSON lines for the tray, localized text for people).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

from agent.core import exitcodes
from agent.policy.decision import Decision, reasons_both
from agent.policy.model import Target
from agent.session import active, events
from agent.session.background import BackgroundTunnel
from agent.session.events import EndReason, SessionEvent, Step
from agent.session.launch import (
    RDP_FILE_PLACEHOLDER,
    ClientInfo,
    LaunchPlan,
    plan,
    rdp_file_text,
    stable_ports,
)
from agent.session.monitor import ComplianceWatch, Transition, clock_jumped
from agent.session.peer import PeerCheck
from agent.session.procs import spawn, terminate_tree
from agent.session.tunnel import Tunnel, TunnelError, preflight

log = logging.getLogger("agent.session")

SESSION_FAILED = exitcodes.SESSION_FAILED
COUNTDOWN_EVERY_S = 10.0
GRACE_RECHECK_S = 15.0  # while the countdown runs, re-check often enough to notice a fix
NETWORK_POLL_S = 5.0
TUNNEL_STEPS = events.TUNNEL_STEPS

Emit = Callable[[SessionEvent], None]
Reevaluate = Callable[[], Decision]


@dataclass
class SessionRequest:
    target: Target
    platform: str
    client: ClientInfo
    correlation_id: str
    recheck_seconds: float
    grace_seconds: float
    tls_context: ssl.SSLContext | None = None  # tunnel mode: the keystore identity + gateway CA
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    gateway_timeout: float = 10.0
    verifier: bool = False  # the policy names a verifier (it may end the session at the gateway)


def network_fingerprint() -> frozenset[tuple[str, str]]:
    """Interface names and addresses: a change means a new network (Wi-Fi, VPN, cable)."""
    try:
        return frozenset((name, a.address) for name, addrs in psutil.net_if_addrs().items()
                         for a in addrs)
    except (psutil.Error, OSError):
        return frozenset()


@contextlib.contextmanager
def private_rdp_file(text: str) -> Iterator[Path]:
    """The .rdp in a directory only this user can open (mkdtemp is 0700), removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="byod-rdp-"))
    path = directory / "session.rdp"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        with contextlib.suppress(OSError):
            directory.rmdir()


class _Tail:
    """The client's last output lines, for the help desk when it fails (never shown raw)."""

    def __init__(self, stream: IO[bytes] | None, keep: int = 40) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=keep)
        if stream is not None:
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for raw in stream:
                self.lines.append(raw.decode("utf-8", "replace").rstrip()[:300])


class Session:
    def __init__(self, request: SessionRequest, *, reevaluate: Reevaluate, emit: Emit,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.req = request
        self.reevaluate = reevaluate
        self.emit = emit
        self.now = now
        self.stop_requested = threading.Event()
        self.tunnel: BackgroundTunnel | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.plan: LaunchPlan | None = None
        self.peer_check: PeerCheck | None = None

    # -- public ------------------------------------------------------------------------------
    def request_stop(self) -> None:
        self.stop_requested.set()

    def run(self) -> int:
        with active.hold():  # no self-update starts while this is held (agent/session/active.py)
            return self._run()

    def _run(self) -> int:
        cid = self.req.correlation_id
        log.info("session start: target %s, mode %s, client %s", self.req.target.id,
                 self.req.target.mode, self.req.client.flavor)
        try:
            local_port = self._open_tunnel()
            if local_port is None:
                return SESSION_FAILED
            self.plan = plan(self.req.target, self.req.platform, self.req.client,
                             local_port=local_port, username=self.req.username)
            if self.plan.rdp_properties is not None:
                with private_rdp_file(rdp_file_text(self.plan.rdp_properties)) as rdp:
                    return self._launch_and_watch(self.plan, rdp)
            return self._launch_and_watch(self.plan, None)
        finally:
            if self.proc is not None and self.proc.poll() is None:
                terminate_tree(self.proc.pid)
            if self.tunnel is not None:
                stats = self.tunnel.stats
                self.tunnel.close()
                log.info("session tunnel closed: up %d bytes, down %d bytes, refused %d",
                         stats.bytes_up, stats.bytes_down, stats.refused_peers)
            log.info("session end (correlation %s)", cid)

    # -- steps -------------------------------------------------------------------------------
    def _error(self, step: Step, detail: str) -> None:
        log.error("session step %s failed: %s", step, detail)
        self.emit(events.error(step, detail))

    def _open_tunnel(self) -> int | None:
        """0 when no tunnel is needed, the local port when it runs, None when it failed."""
        target = self.req.target
        if target.mode != "tunnel":
            return 0
        if self.req.tls_context is None or not target.gateway_host or not target.gateway_port:
            self._error(Step.CERTIFICATE, "no TLS identity for the tunnel")
            return None
        self.peer_check = PeerCheck(strict=self.req.client.flavor != "windows_app")
        tunnel = Tunnel(target.gateway_host, target.gateway_port, target.host,
                        self.req.tls_context, timeout=self.req.gateway_timeout,
                        peer_allowed=self.peer_check, local_ports=stable_ports(target.id))
        self.tunnel = BackgroundTunnel(tunnel, correlation_id=self.req.correlation_id)
        try:
            self.tunnel.call(preflight(target.gateway_host, target.gateway_port, target.host,
                                       self.req.tls_context,
                                       timeout=self.req.gateway_timeout,
                                       eof_means_refused=target.gateway_software == "nginx"),
                             self.req.gateway_timeout * 3 + 5)
            port = self.tunnel.start()
        except TunnelError as exc:
            self._error(TUNNEL_STEPS.get(exc.step, Step.TLS), exc.detail)
            return None
        except TimeoutError:  # every step has its own timeout; this is the backstop
            self._error(Step.TCP, "the gateway did not answer in time")
            return None
        except OSError as exc:  # the local listener itself could not open
            self._error(Step.TCP, f"local listener on 127.0.0.1: {exc}")
            return None
        self.peer_check.listen_port = port
        if tunnel.port_fallback:
            log.warning("session: the stable port of %s is taken; using 127.0.0.1:%d, so a "
                        "signed .rdp file does not match and Windows warns about an unknown "
                        "remote connection this time", target.id, port)
        return port

    def _rdp_read(self) -> bool:
        """The .rdp file may go once the client has surely read it: when it connected to the
        tunnel (it read the address from the file). Without a tunnel nothing says so, and since
        the April 2026 update mstsc shows its security dialog first, which staff may leave open
        for minutes: the file then stays (in its private directory) until the session ends."""
        return self.tunnel is not None and self.tunnel.stats.connections > 0

    def _spawn(self, launch: LaunchPlan, rdp: Path | None) -> subprocess.Popen[bytes] | None:
        argv = list(launch.argv)
        if rdp is not None:
            argv = [str(rdp) if a == RDP_FILE_PLACEHOLDER else a for a in argv]
        if self.req.client.path and argv[0] == self.req.client.program:
            argv[0] = self.req.client.path
        try:
            proc = spawn(argv, stdin_pipe=self.req.password is not None)
        except FileNotFoundError as exc:
            self._error(Step.CLIENT_MISSING, str(exc))
            return None
        except OSError as exc:
            self._error(Step.CLIENT_FAILED, f"could not start {argv[0]}: {exc}")
            return None
        if self.peer_check is not None:
            self.peer_check.set_client(proc.pid)
        if proc.stdin is not None and self.req.password is not None:
            # FreeRDP /from-stdin:force reads it before connecting; it never touches argv or disk.
            with contextlib.suppress(OSError):
                proc.stdin.write(self.req.password.encode("utf-8") + b"\n")
                proc.stdin.close()
        return proc

    def _launch_and_watch(self, launch: LaunchPlan, rdp: Path | None) -> int:
        proc = self._spawn(launch, rdp)
        if proc is None:
            return SESSION_FAILED
        self.proc = proc
        tail = _Tail(proc.stdout)
        started = self.now()
        self.emit(events.started(self.req.target.id, self.req.correlation_id, proc.pid))
        log.info("session client started: pid %d", proc.pid)
        outcome = self._watch(proc, started, rdp)
        if outcome is not None:
            return outcome
        code = proc.wait()
        return self._client_ended(code, tail)

    def _client_ended(self, code: int, tail: _Tail) -> int:
        tunnel_errors = self.tunnel.stats.errors if self.tunnel is not None else []
        if tunnel_errors:
            step, _, detail = tunnel_errors[0].partition(": ")
            self._error(events.tunnel_step(step, verifier=self.req.verifier), detail)
            self.emit(events.ended(EndReason.ERROR, self.req.correlation_id))
            return SESSION_FAILED
        if code != 0:
            log.error("client exited with %d; its last lines: %s", code, " | ".join(tail.lines))
            self._error(Step.CLIENT_FAILED, f"exit code {code}")
            self.emit(events.ended(EndReason.ERROR, self.req.correlation_id))
            return SESSION_FAILED
        log.info("session client exited normally")
        self.emit(events.ended(EndReason.CLIENT_EXIT, self.req.correlation_id))
        return exitcodes.OK

    def _watch(self, proc: subprocess.Popen[bytes], started: float,
               rdp: Path | None) -> int | None:
        """Until the client exits: re-check, count down, end the session. None = client exited."""
        watch = ComplianceWatch(self.req.grace_seconds)
        next_check = started + self.req.recheck_seconds
        next_countdown = 0.0
        next_net = started + NETWORK_POLL_S
        net = network_fingerprint()
        wall, mono = time.time(), time.monotonic()
        while proc.poll() is None:
            if self.stop_requested.wait(0.5):
                return self._end(proc, EndReason.STOPPED, exitcodes.OK)
            now = self.now()
            if rdp is not None and rdp.exists() and self._rdp_read():
                with contextlib.suppress(OSError):
                    rdp.unlink()  # read by now; the directory goes at the end
            wall2, mono2 = time.time(), time.monotonic()
            if clock_jumped(wall2 - wall, mono2 - mono):
                log.info("session: the clock jumped (sleep/resume?): re-checking now")
                next_check = now
            wall, mono = wall2, mono2
            if now >= next_net:
                next_net = now + NETWORK_POLL_S
                fresh = network_fingerprint()
                if fresh != net:
                    log.info("session: the network changed: re-checking now")
                    net, next_check = fresh, now
            if now >= next_check:
                transition = self._recheck(watch)
                interval = GRACE_RECHECK_S if watch.deadline is not None else float("inf")
                next_check = self.now() + min(self.req.recheck_seconds, interval)
                if transition is Transition.NONCOMPLIANT:
                    next_countdown = self.now() + COUNTDOWN_EVERY_S
            transition = watch.tick(self.now())
            if transition is Transition.EXPIRED:
                return self._end(proc, EndReason.NONCOMPLIANT, exitcodes.BLOCKED)
            remaining = watch.remaining(self.now())
            if remaining is not None and self.now() >= next_countdown:
                next_countdown = self.now() + COUNTDOWN_EVERY_S
                self.emit(events.countdown(remaining))
        return None

    def _recheck(self, watch: ComplianceWatch) -> Transition | None:
        try:
            decision = self.reevaluate()
            allowed, cid = decision.allowed, decision.correlation_id
            reasons = reasons_both(decision)
        except Exception as exc:  # a policy that can no longer be used ends the session too
            log.error("session re-check failed: %s", exc)
            allowed, reasons, cid = False, [], "-"
        log.info("session re-check: %s (decision %s)", "allowed" if allowed else "NOT allowed",
                 cid)
        transition = watch.observe(allowed, self.now())
        if transition is Transition.NONCOMPLIANT:
            self.emit(events.noncompliant(int(self.req.grace_seconds), events.texts(reasons),
                                          cid))
        elif transition is Transition.RECOVERED:
            self.emit(events.recovered(cid))
        return transition

    def _end(self, proc: subprocess.Popen[bytes], reason: EndReason, code: int) -> int:
        log.warning("session ended by the agent: %s", reason)
        killed = terminate_tree(proc.pid)
        log.info("client process tree ended (%d killed)", killed)
        self.emit(events.ended(reason, self.req.correlation_id))
        return code


def install_stop_signals(session: Session) -> None:
    """SIGTERM (the tray's Disconnect) and Ctrl+C end the session cleanly, from the main thread."""
    def handler(_signum: int, _frame: object) -> None:
        session.request_stop()

    signal.signal(signal.SIGINT, handler)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, handler)
