"""A one-connection TCP -> mutual-TLS tunnel on 127.0.0.1.

The RDP client connects to an ephemeral loopback port; the bytes travel inside TLS, with the user's
certificate, to the city's gateway (nginx ``stream`` / stunnel / HAProxy), which maps the SNI name
to the office PC. Design choices:
- listen on 127.0.0.1 only; accept exactly one connection (the launched client's, where the OS
  lets us tell by the peer's owning process), then close the listener;
- backpressure: every write waits for ``drain()`` before the next read;
- half-close: a client EOF cannot be forwarded inside TLS (asyncio's SSL transport has no
  ``write_eof``), so we keep reading from the gateway until it closes; a gateway EOF is forwarded
  to the client with a TCP half-close;
- counters for the log, and a clean shutdown that closes both sides.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.session.certname import certificate_names_host

log = logging.getLogger("agent.session.tunnel")
CHUNK = 256 * 1024


class TunnelError(Exception):
    """Why the tunnel could not reach the gateway: ``step`` names the failing stage."""

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"{step}: {detail}")
        self.step = step  # resolve | tcp | tls | gateway_refused | office_unreachable
        self.detail = detail


@dataclass
class TunnelStats:
    bytes_up: int = 0  # client -> gateway
    bytes_down: int = 0  # gateway -> client
    connections: int = 0
    refused_peers: int = 0
    errors: list[str] = field(default_factory=list)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                count: Callable[[int], None], half_close: bool,
                errors: list[str]) -> None:
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            writer.write(data)
            count(len(data))
            await writer.drain()  # backpressure: the slow side slows the fast one
        if half_close and writer.can_write_eof():
            writer.write_eof()
    except ssl.SSLError as exc:
        # TLS 1.3: a gateway that rejects our certificate says so in the first records it sends.
        step = "gateway_refused" if "CERTIFICATE" in exc.reason.upper() else "tls"
        errors.append(f"{step}: {exc.reason}")
        log.warning("tunnel TLS error: %s", exc.reason)
    except (ConnectionError, OSError) as exc:
        log.info("tunnel stream ended: %s", type(exc).__name__)


def _require_tunnel_context(context: ssl.SSLContext) -> None:
    if context.verify_mode is not ssl.CERT_REQUIRED or context.check_hostname:
        raise ValueError("use a CERT_REQUIRED context with check_hostname=False: the tunnel "
                         "checks the gateway's name itself because SNI names the office PC")


async def connect_gateway(host: str, port: int, sni: str, context: ssl.SSLContext, *,
                          timeout: float, verify_name: str | None = None,
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open TCP, then TLS on the same socket, so a failure names the step that failed.

    The chain is verified by OpenSSL (CERT_REQUIRED); the certificate must name ``verify_name``
    (default: the gateway host), while SNI carries ``sni`` (the office PC) for routing.
    """
    _require_tunnel_context(context)
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM),
                                       timeout)
    except (OSError, TimeoutError) as exc:
        raise TunnelError("resolve", f"{host}: {exc}") from exc
    last: Exception | None = None
    for family, _, proto, _, addr in infos:
        sock = socket.socket(family, socket.SOCK_STREAM, proto)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, addr), timeout)
        except (OSError, TimeoutError) as exc:
            sock.close()
            last = exc
            continue
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                sock=sock, ssl=context, server_hostname=sni, ssl_handshake_timeout=timeout),
                timeout)
        except ssl.SSLCertVerificationError as exc:
            sock.close()
            raise TunnelError("tls", f"gateway certificate not trusted: {exc.verify_message}") \
                from exc
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as exc:
            sock.close()
            raise TunnelError("gateway_refused", f"TLS handshake refused: {exc}") from exc
        except (OSError, TimeoutError) as exc:
            sock.close()
            raise TunnelError("tls", f"TLS handshake failed: {exc}") from exc
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        name = verify_name or host
        if not der or not certificate_names_host(der, name):
            writer.close()
            raise TunnelError("tls", f"gateway certificate not trusted: it does not name {name}")
        return reader, writer
    raise TunnelError("tcp", f"{host}:{port} unreachable: {last}")


async def preflight(host: str, port: int, sni: str, context: ssl.SSLContext, *,
                    timeout: float, verify_name: str | None = None,
                    listen: float = 1.0) -> None:
    """Walk the whole path once before the RDP client starts, so a failure names its step.

    An RDP server never speaks first, so after the handshake a healthy path stays quiet. Under
    TLS 1.3 a gateway that refuses our certificate says so in its first records (an alert), and
    nginx closes at once when it cannot reach the office PC behind it.
    """
    reader, writer = await connect_gateway(host, port, sni, context, timeout=timeout,
                                           verify_name=verify_name)
    try:
        data = await asyncio.wait_for(reader.read(1), listen)
    except TimeoutError:
        return  # quiet: the gateway holds a connection to the office PC open for us
    except ssl.SSLError as exc:
        step = "gateway_refused" if "CERTIFICATE" in (exc.reason or "").upper() else "tls"
        raise TunnelError(step, f"gateway alert: {exc.reason}") from exc
    except (ConnectionError, OSError) as exc:
        raise TunnelError("office_unreachable", f"gateway dropped the connection: {exc}") from exc
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    if not data:
        raise TunnelError("office_unreachable",
                          "the gateway accepted us and closed: the office PC did not answer it")


class Tunnel:
    """Serve one client connection through the gateway. Use ``start()`` then ``wait()``."""

    def __init__(self, gateway_host: str, gateway_port: int, sni: str,
                 context: ssl.SSLContext, *, timeout: float = 10.0,
                 peer_allowed: Callable[[tuple[str, int]], bool] | None = None,
                 max_connections: int = 1, half_close_grace: float = 5.0,
                 verify_name: str | None = None) -> None:
        _require_tunnel_context(context)
        self.gateway = (gateway_host, gateway_port)
        self.sni = sni
        self.context = context
        self.timeout = timeout
        self.peer_allowed = peer_allowed
        self.max_connections = max_connections
        self.half_close_grace = half_close_grace
        self.verify_name = verify_name or gateway_host
        self.stats = TunnelStats()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._done = asyncio.Event()
        self._active = 0  # connections being served right now

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("tunnel listening on 127.0.0.1:%d for %s via %s:%d", self.port, self.sni,
                 *self.gateway)
        return self.port

    async def _handle(self, c_reader: asyncio.StreamReader,
                      c_writer: asyncio.StreamWriter) -> None:
        peer = c_writer.get_extra_info("peername")
        if self.stats.connections >= self.max_connections or (
                self.peer_allowed is not None and not self.peer_allowed(peer)):
            self.stats.refused_peers += 1
            log.warning("tunnel refused a local connection from %s", peer)
            c_writer.close()
            return
        self.stats.connections += 1
        self._active += 1
        if self.stats.connections >= self.max_connections and self._server is not None:
            self._server.close()  # nobody else may use this port
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            try:
                g_reader, g_writer = await connect_gateway(
                    *self.gateway, self.sni, self.context, timeout=self.timeout,
                    verify_name=self.verify_name)
            except TunnelError as exc:
                self.stats.errors.append(f"{exc.step}: {exc.detail}")
                log.error("tunnel could not reach the gateway: %s", exc)
                c_writer.close()
                return

            down_here = 0
            errors_before = len(self.stats.errors)

            def up(n: int) -> None:
                self.stats.bytes_up += n

            def down(n: int) -> None:
                nonlocal down_here
                down_here += n
                self.stats.bytes_down += n

            up_task = asyncio.create_task(
                _pump(c_reader, g_writer, up, half_close=False, errors=self.stats.errors))
            down_task = asyncio.create_task(
                _pump(g_reader, c_writer, down, half_close=True, errors=self.stats.errors))
            pending: set[asyncio.Task[None]] = {up_task, down_task}
            try:
                _done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                # One direction ended: give the other a grace period to finish what is in
                # flight (the half-close), then close both sides so no connection lingers.
                if pending:
                    _, pending = await asyncio.wait(pending, timeout=self.half_close_grace)
            finally:  # also on close(): no pump outlives the tunnel
                for t in pending:
                    t.cancel()
                for w in (g_writer, c_writer):
                    w.close()
            if down_here == 0 and len(self.stats.errors) == errors_before:
                # nginx answers a refused or missing certificate (and an unreachable office PC)
                # by closing the connection before the first byte: say so, it is the user's clue.
                self.stats.errors.append("gateway_closed: the gateway closed the connection "
                                         "without answering")
            for w in (g_writer, c_writer):
                with contextlib.suppress(OSError, ssl.SSLError):
                    await w.wait_closed()
        finally:
            log.info("tunnel connection closed: up %d bytes, down %d bytes",
                     self.stats.bytes_up, self.stats.bytes_down)
            self._active -= 1
            # Done when no more connections may come AND every one has finished: the first
            # to end must not cut the others short (mstsc may open a second connection).
            if self.stats.connections >= self.max_connections and self._active == 0:
                self._done.set()

    async def wait(self) -> None:
        await self._done.wait()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in list(self._tasks):
            t.cancel()
        self._done.set()
