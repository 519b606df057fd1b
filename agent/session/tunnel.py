"""A TCP -> mutual-TLS tunnel on 127.0.0.1, for the RDP client's connection(s).

The RDP client connects to an ephemeral loopback port; the bytes travel inside TLS, with the user's
certificate, to the city's gateway (nginx ``stream`` / stunnel / HAProxy), which maps the SNI name
to the office PC. Design choices:
- listen on 127.0.0.1 only; accept up to ``max_connections`` (the launched client's, where the OS
  lets us tell by the peer's owning process), then close the listener;
- every established connection is relayed on the event loop by two ``asyncio.Protocol``
  callbacks, with the TLS records moved through an ``ssl.MemoryBIO`` pair: a message costs one
  callback, one OpenSSL call and one transport write (no task, future or stream buffer per
  message), and under load one wake-up of the loop serves every stream that has data, where
  stunnel wakes a thread per connection. The loop is uvloop where installed
  (``new_event_loop``). The measurements that chose this over asyncio streams, a thread per
  connection and uvloop's own SSL transport are in bench/README.md;
- backpressure: a transport whose send buffer passes ``WRITE_HIGH`` pauses reading on the other
  side until it drains;
- half-close: a client EOF cannot be forwarded inside TLS without ending it, so we keep reading
  from the gateway until it closes (``half_close_grace``); a gateway EOF is forwarded to the
  client with a TCP half-close;
- the chain is verified by OpenSSL (CERT_REQUIRED, TLS 1.2 or newer), the gateway's name by
  ``certificate_names_host`` while SNI names the office PC, for the handshake of every connection;
- TCP_NODELAY on both sockets (interactive RDP), counters for the log, and a clean shutdown that
  closes both sides (TLS close_notify first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from agent.core import exitcodes
from agent.core.errors import AgentError
from agent.core.messages import Message
from agent.session.certname import certificate_names_host

log = logging.getLogger("agent.session.tunnel")
READ = 32 * 1024  # plaintext per SSL_read call: more than one TLS record (16 KiB)
RECV = 256 * 1024  # bytes per socket read, each side
WRITE_HIGH = 256 * 1024  # a transport's send buffer before the other side stops being read


class TunnelError(AgentError):
    """Why the tunnel could not reach the gateway: ``step`` names the failing stage."""

    exit_code: ClassVar[int] = exitcodes.SESSION_FAILED

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(Message(f"session.step.{step}", {"detail": detail[:200]}),
                         f"{step}: {detail}")
        self.step = step  # resolve | tcp | tls | gateway_refused | office_unreachable
        self.detail = detail


@dataclass
class TunnelStats:
    bytes_up: int = 0  # client -> gateway
    bytes_down: int = 0  # gateway -> client
    connections: int = 0
    refused_peers: int = 0
    errors: list[str] = field(default_factory=list)


# Status lines of the shipped nginx gateway (installer/gateway/nginx-stream.conf)
GATEWAY_OFFICE_DOWN = b"BYOD-GATEWAY-OFFICE-DOWN"
GATEWAY_NO_OFFICE_PC = b"BYOD-GATEWAY-NO-OFFICE-PC"

_OLD_TLS = {ssl.TLSVersion.MINIMUM_SUPPORTED, ssl.TLSVersion.SSLv3, ssl.TLSVersion.TLSv1,
            ssl.TLSVersion.TLSv1_1}


def _require_tunnel_context(context: ssl.SSLContext) -> None:
    if context.verify_mode is not ssl.CERT_REQUIRED or context.check_hostname:
        raise ValueError("use a CERT_REQUIRED context with check_hostname=False: the tunnel "
                         "checks the gateway's name itself because SNI names the office PC")
    if context.minimum_version in _OLD_TLS:
        raise ValueError("the tunnel needs a context with minimum_version TLS 1.2 or newer")


def _tls_step(exc: ssl.SSLError) -> str:
    # TLS 1.3: a gateway that rejects our certificate says so in the first records it sends.
    return "gateway_refused" if "CERTIFICATE" in (exc.reason or "").upper() else "tls"


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
                    listen: float = 1.0, eof_means_refused: bool = False) -> None:
    """Walk the whole path once before the RDP client starts, so a failure names its step.

    An RDP server never speaks first, so after the handshake a healthy path stays quiet. Under
    TLS 1.3 a gateway that refuses our certificate says so in its first records (an alert), and
    nginx closes at once when it cannot reach the office PC behind it.
    """
    reader, writer = await connect_gateway(host, port, sni, context, timeout=timeout,
                                           verify_name=verify_name)
    try:
        data = await asyncio.wait_for(reader.read(1), listen)
        if data == b"B":  # installer/gateway/nginx-stream.conf's status lines (an RDP server
            # never speaks first, so a first byte is either one of these or an error)
            data += await asyncio.wait_for(reader.read(64), listen)
    except TimeoutError:
        return  # quiet: the gateway holds a connection to the office PC open for us
    except ssl.SSLError as exc:
        raise TunnelError(_tls_step(exc), f"gateway alert: {exc.reason}") from exc
    except (ConnectionError, OSError) as exc:
        raise TunnelError("office_unreachable", f"gateway dropped the connection: {exc}") from exc
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    if data.startswith(GATEWAY_OFFICE_DOWN):
        raise TunnelError("office_unreachable", "the gateway could not reach the office PC")
    if data.startswith(GATEWAY_NO_OFFICE_PC):
        raise TunnelError("gateway_refused", "the gateway knows no office PC for this user")
    if not data and eof_means_refused:
        # nginx refuses a certificate (revoked, expired, foreign, none) with a clean EOF and no
        # alert; the shipped installer/gateway/nginx-stream.conf answers an unreachable office
        # PC with data instead, so with it (target gateway_software = "nginx") EOF is a refusal.
        raise TunnelError("gateway_refused",
                          "the gateway closed after the handshake: it did not accept the "
                          "certificate (nginx gives no alert; its error log says why)")
    if not data:
        raise TunnelError("office_unreachable",
                          "the gateway accepted us and closed: the office PC did not answer it")


class _TLS:
    """TLS of one gateway connection in a pair of memory BIOs (no SSL transport in between).

    The relay moves records itself: the bytes read from the gateway's socket go into
    ``incoming``, OpenSSL decrypts them in place, and what it encrypts is taken from
    ``outgoing`` and written to the socket. All of it runs on the event loop's one thread.
    """

    def __init__(self, context: ssl.SSLContext, sni: str) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_hostname=sni)

    async def handshake(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            data = self.outgoing.read()
            if data:
                await loop.sock_sendall(sock, data)
            raw = await loop.sock_recv(sock, 65536)
            if not raw:
                raise ConnectionResetError("the gateway closed during the TLS handshake")
            self.incoming.write(raw)
        data = self.outgoing.read()  # our Finished (and the certificate flight under TLS 1.3)
        if data:
            await loop.sock_sendall(sock, data)


async def open_gateway(addrs: list[tuple[int, int, Any]], sni: str, context: ssl.SSLContext,
                       *, timeout: float, verify_name: str) -> tuple[socket.socket, _TLS]:
    """``connect_gateway`` for the relay: TCP, then TLS in memory BIOs; each step bounded and
    named as there. ``addrs``: (family, proto, sockaddr) from ``Tunnel.start``'s resolution."""
    loop = asyncio.get_running_loop()
    last: Exception | None = None
    for family, proto, addr in addrs:
        sock = socket.socket(family, socket.SOCK_STREAM, proto)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, addr), timeout)
        except (OSError, TimeoutError) as exc:
            sock.close()
            last = exc
            continue
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = _TLS(context, sni)
            await asyncio.wait_for(tls.handshake(sock), timeout)
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
        except BaseException:  # cancelled (Tunnel.close)
            sock.close()
            raise
        der = tls.obj.getpeercert(binary_form=True)
        if not der or not certificate_names_host(der, verify_name):
            sock.close()
            raise TunnelError("tls", "gateway certificate not trusted: it does not name "
                              f"{verify_name}")
        return sock, tls
    raise TunnelError("tcp", f"{addrs[0][2] if addrs else '?'} unreachable: {last}")


class _Side(asyncio.BufferedProtocol):
    """One socket of a relayed connection; the ``_Relay`` does the work.

    Buffered: the transport reads straight into this side's own buffer, so no ``bytes`` is
    allocated and filled per read; OpenSSL takes the bytes from there (encrypting them, or into
    the incoming BIO) before the next read."""

    def __init__(self, relay: _Relay, gateway: bool) -> None:
        self.relay = relay
        self.gateway = gateway
        self._view = memoryview(bytearray(RECV))
        self._take = relay.from_gateway if gateway else relay.from_client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.gateway and isinstance(transport, asyncio.ReadTransport):
            transport.pause_reading()  # until the client's side exists (Tunnel._serve)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self._take(self._view[:nbytes])

    def eof_received(self) -> bool:
        self.relay.eof(gateway=self.gateway)
        return True  # keep the other direction: the relay decides when to close

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.lost(gateway=self.gateway, exc=exc)

    # flow control: our side's send buffer is full -> stop reading the other side
    def pause_writing(self) -> None:
        self.relay.pause(reader_is_gateway=not self.gateway, paused=True)

    def resume_writing(self) -> None:
        self.relay.pause(reader_is_gateway=not self.gateway, paused=False)


class _Relay:
    """One admitted connection: client TCP <-> TLS records <-> gateway TCP, on the loop.

    A message costs one ``data_received`` call, one OpenSSL call and one transport write, with
    no task, future or stream buffer per message; under load one loop wake-up serves every
    stream that has data (see bench/README.md for why this beat a thread per connection).
    """

    def __init__(self, tunnel: Tunnel, tls: _TLS) -> None:
        self.tunnel = tunnel
        self.tls = tls
        self.client: asyncio.Transport | None = None
        self.gw: asyncio.Transport | None = None
        self.down_bytes = 0
        self.errors_before = len(tunnel.stats.errors)
        self.done = asyncio.get_running_loop().create_future()
        self._lost = {True: False, False: False}
        self._closing = False
        self._grace: asyncio.TimerHandle | None = None
        self._eofs: set[bool] = set()  # which sides sent EOF (True: the gateway)
        self.ended_by: bool | None = None  # which side ended first (True: the gateway)

    def from_client(self, data: bytes | memoryview) -> None:
        if self._closing or self.gw is None:  # never: the gateway's side is made first
            return
        self.tls.obj.write(data)  # the memory BIO never refuses: all of it, as records
        self.gw.write(self.tls.outgoing.read())
        self.tunnel.stats.bytes_up += len(data)

    def from_gateway(self, data: bytes | memoryview) -> None:
        tls = self.tls
        if self._closing:
            return
        if data:
            tls.incoming.write(data)
        if self.client is None:
            return  # kept in the BIO: Tunnel._serve calls again once the client's side exists
        parts: list[bytes] = []
        ended = False
        try:
            while True:
                try:
                    parts.append(tls.obj.read(READ))
                except ssl.SSLWantReadError:
                    break  # the rest of a record is still on its way
                except ssl.SSLZeroReturnError:
                    ended = True  # close_notify
                    break
                if not tls.incoming.pending and not tls.obj.pending():
                    break  # all consumed: skip the SSLWantReadError round
        except ssl.SSLError as exc:
            self.tunnel.stats.errors.append(f"{_tls_step(exc)}: {exc.reason}")
            log.warning("tunnel TLS error: %s", exc.reason)
            self.close()
            return
        if tls.outgoing.pending and self.gw is not None:  # a post-handshake message's answer
            self.gw.write(tls.outgoing.read())
        if parts:
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            self.client.write(data)
            self.down_bytes += len(data)
            self.tunnel.stats.bytes_down += len(data)
        if ended:
            self.eof(gateway=True)

    def eof(self, *, gateway: bool) -> None:
        if gateway and self.client is not None and self.client.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                self.client.write_eof()  # forward the gateway's EOF as a TCP half-close
        # A client EOF is not forwarded (inside TLS it would end the stream): the gateway side
        # keeps going for the grace period, then both close so no connection lingers.
        if self.ended_by is None and not self._closing:
            self.ended_by = gateway
        self._eofs.add(gateway)
        if len(self._eofs) == 2:
            self.close()  # both directions are over
        elif self._grace is None and not self._closing:
            self._grace = asyncio.get_running_loop().call_later(
                self.tunnel.half_close_grace, self.close)

    def lost(self, *, gateway: bool, exc: Exception | None) -> None:
        if self.ended_by is None and not self._closing:
            self.ended_by = gateway
        self._lost[gateway] = True
        if exc is not None:
            log.info("tunnel stream ended: %s", type(exc).__name__)
        self.close()
        if all(self._lost.values()) and not self.done.done():
            self.done.set_result(None)

    def pause(self, *, reader_is_gateway: bool, paused: bool) -> None:
        reader = self.gw if reader_is_gateway else self.client
        if reader is None or reader.is_closing():
            return
        if paused:
            reader.pause_reading()
        else:
            reader.resume_reading()

    def close(self) -> None:
        """Close both sides (TLS close_notify first); idempotent."""
        if self._closing:
            return
        self._closing = True
        if self._grace is not None:
            self._grace.cancel()
        if self.gw is not None and not self.gw.is_closing():
            with contextlib.suppress(ssl.SSLError, ValueError):
                self.tls.obj.unwrap()  # writes close_notify into the BIO
            data = self.tls.outgoing.read()
            if data:
                self.gw.write(data)
        for t in (self.gw, self.client):
            if t is not None:
                t.close()  # after what is buffered has been sent
        for side, t in ((True, self.gw), (False, self.client)):
            if t is None:
                self._lost[side] = True
        if all(self._lost.values()) and not self.done.done():
            self.done.set_result(None)

    def abort(self) -> None:
        self._closing = True
        for t in (self.gw, self.client):
            if t is not None:
                t.abort()


class _Listener:
    """The loopback listening socket, shaped like ``asyncio.Server`` where callers look."""

    def __init__(self, sock: socket.socket) -> None:
        self.sockets = [sock]
        self.task: asyncio.Task[None] | None = None

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        sock = self.sockets[0]
        if sock.fileno() != -1:
            with contextlib.suppress(RuntimeError, ValueError, OSError):
                asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()


class Tunnel:
    """Serve the client's connection(s) through the gateway. Use ``start()`` then ``wait()``."""

    def __init__(self, gateway_host: str, gateway_port: int, sni: str,
                 context: ssl.SSLContext, *, timeout: float = 10.0,
                 peer_allowed: Callable[[tuple[str, int]], bool] | None = None,
                 max_connections: int = 1, half_close_grace: float = 5.0,
                 verify_name: str | None = None, local_ports: tuple[int, ...] = ()) -> None:
        _require_tunnel_context(context)
        # Ports to try first (a stable port per target, so the .rdp file can be signed); any
        # free port when all are taken. ``port_fallback`` says which happened.
        self.local_ports = local_ports
        self.port_fallback = False
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
        self._server: _Listener | None = None
        self._addrs: list[tuple[int, int, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._relays: set[_Relay] = set()
        self._done = asyncio.Event()
        self._active = 0  # connections being admitted or served right now

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        host, port = self.gateway
        try:  # once, bounded: every connection then only connects
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise TunnelError("resolve", f"{host}: {exc}") from exc
        self._addrs = [(family, proto, addr) for family, _, proto, _, addr in infos]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            for wanted in self.local_ports:
                try:
                    sock.bind(("127.0.0.1", wanted))
                    break
                except OSError as exc:  # taken (or excluded, e.g. a Hyper-V reserved range)
                    log.warning("tunnel: 127.0.0.1:%d is not free (%s)", wanted, exc)
            else:
                self.port_fallback = bool(self.local_ports)
                sock.bind(("127.0.0.1", 0))
            sock.listen(min(128, max(8, self.max_connections)))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._server = _Listener(sock)
        self._server.task = asyncio.create_task(self._accept(sock))
        self.port = sock.getsockname()[1]
        log.info("tunnel listening on 127.0.0.1:%d for %s via %s:%d", self.port, self.sni,
                 *self.gateway)
        return self.port

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, peer = await loop.sock_accept(sock)
            except OSError:
                return  # the listener was closed
            task = asyncio.create_task(self._handle(client, peer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _handle(self, client: socket.socket, peer: tuple[str, int]) -> None:
        try:
            allowed = True
            if self.peer_allowed is not None:  # may wait for the client's PID and scan /proc
                allowed = await asyncio.get_running_loop().run_in_executor(
                    None, self.peer_allowed, peer)
        except BaseException:
            client.close()
            raise
        if self.stats.connections >= self.max_connections or not allowed:
            self.stats.refused_peers += 1
            log.warning("tunnel refused a local connection from %s", peer)
            client.close()
            return
        self.stats.connections += 1
        self._active += 1
        if self.stats.connections >= self.max_connections and self._server is not None:
            self._server.close()  # nobody else may use this port
        try:
            await self._serve(client)
        finally:
            log.info("tunnel connection closed: up %d bytes, down %d bytes",
                     self.stats.bytes_up, self.stats.bytes_down)
            self._active -= 1
            # Done when no more connections may come AND every one has finished: the first
            # to end must not cut the others short (mstsc may open a second connection).
            if self.stats.connections >= self.max_connections and self._active == 0:
                self._done.set()

    async def _serve(self, client: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            gw_sock, tls = await open_gateway(self._addrs, self.sni, self.context,
                                              timeout=self.timeout, verify_name=self.verify_name)
        except TunnelError as exc:
            self.stats.errors.append(f"{exc.step}: {exc.detail}")
            log.error("tunnel could not reach the gateway: %s", exc)
            client.close()
            return
        except BaseException:
            client.close()
            raise
        relay = _Relay(self, tls)
        self._relays.add(relay)
        try:
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            relay.gw, _ = await loop.create_connection(  # not reading yet: connection_made
                lambda: _Side(relay, gateway=True), sock=gw_sock)
            relay.client, _ = await loop.connect_accepted_socket(
                lambda: _Side(relay, gateway=False), client)
            for t in (relay.client, relay.gw):
                t.set_write_buffer_limits(high=WRITE_HIGH)
            relay.gw.resume_reading()
            if tls.incoming.pending:  # records that came with the handshake, or before now
                relay.from_gateway(b"")
            await relay.done
            if relay.down_bytes == 0 and len(self.stats.errors) == relay.errors_before:
                # nginx answers a refused or missing certificate (and an unreachable office PC)
                # by closing the connection before the first byte: say so, it is the user's clue.
                self.stats.errors.append("gateway_closed: the gateway closed the connection "
                                         "without answering")
            elif relay.ended_by and len(self.stats.errors) == relay.errors_before:
                # an established session the gateway ended (a verifier's cut, or the office PC
                # went away): events.tunnel_step names it
                self.stats.errors.append("gateway_ended: the gateway ended an established "
                                         "session")
        except OSError as exc:
            log.info("tunnel stream ended: %s", type(exc).__name__)
        finally:
            self._relays.discard(relay)
            relay.abort()
            if relay.client is None:
                client.close()
            if relay.gw is None:
                gw_sock.close()

    async def wait(self) -> None:
        await self._done.wait()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for relay in list(self._relays):
            relay.abort()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        self._done.set()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (Linux, macOS), else asyncio's own loop (Windows).

    Measured in bench/README.md: the same relay uses about a tenth less CPU per message on
    uvloop. ``BYOD_TUNNEL_LOOP=asyncio`` forces asyncio's loop (for the benchmark's comparison
    and as an escape hatch should uvloop ever misbehave on a PC).
    """
    if os.environ.get("BYOD_TUNNEL_LOOP", "").lower() != "asyncio":
        try:
            import uvloop  # noqa: PLC0415 (optional, not on Windows)
        except ImportError:
            pass
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()
