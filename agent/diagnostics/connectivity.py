"""Connectivity to each policy target's gateway, for ``connectivity.json`` in the bundle.

Per target, three steps, each with its own timeout and duration: DNS resolution, a TCP connect,
and (tunnel targets) the TLS handshake the session would make, through the same
``connect_gateway`` with the policy's gateway CA. With an enrolled certificate the handshake
presents it; without one it is made without a client certificate, and the expected answer is the
gateway's refusal ("certificate required"), which tells the help desk the path works up to the
certificate. Addresses are written as they are: the bundle's redactor pseudonymizes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from agent.keystore import Identity
from agent.keystore.tls import client_context
from agent.policy.model import Target
from agent.session.tunnel import TunnelError, connect_gateway

SCHEMA = 1
DEFAULT_TIMEOUT_S = 5.0
# After a TLS 1.3 handshake the gateway's verdict on our certificate arrives as the first record.
POST_HANDSHAKE_WAIT_S = 1.0
MAX_ADDRESSES = 3  # TCP tries at most this many resolved addresses: the run stays bounded

_CLOSED_WITHOUT = ("certificate required: the gateway closed the connection after the handshake "
                   "(no client certificate was presented)")
_CLOSED_WITH = ("the gateway closed the connection after the handshake: the certificate was "
                "refused, or the office PC behind the gateway did not answer")
ContextFactory = Callable[[str], ssl.SSLContext]  # gateway CA PEM -> client context


def _ms(start: float) -> int:
    return round((time.monotonic() - start) * 1000)


def _endpoint(target: Target) -> tuple[str, int]:
    if target.gateway_host and target.gateway_port:
        return target.gateway_host, target.gateway_port
    return target.host, target.port


async def _resolve(host: str, port: int, timeout: float) -> tuple[dict[str, Any], list[Any]]:
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM),
                                       timeout)
    except TimeoutError:
        return {"status": "timeout", "ms": _ms(start)}, []
    except OSError as exc:
        return {"status": "failed", "ms": _ms(start), "detail": str(exc)}, []
    addresses = sorted({str(i[4][0]) for i in infos})
    return {"status": "ok", "ms": _ms(start), "addresses": addresses}, infos


async def _tcp(infos: list[Any], timeout: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    last = "no address"
    for family, _, proto, _, addr in infos[:MAX_ADDRESSES]:
        sock = socket.socket(family, socket.SOCK_STREAM, proto)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, addr), timeout)
            return {"status": "ok", "ms": _ms(start), "address": str(addr[0])}
        except TimeoutError:
            last = "timeout"
        except OSError as exc:
            last = exc.strerror or type(exc).__name__
        finally:
            sock.close()
    status = "timeout" if last == "timeout" else "failed"
    return {"status": status, "ms": _ms(start), "detail": last}


def _refusal(reason: str) -> bool:
    return "CERTIFICATE" in reason.upper() or "HANDSHAKE_FAILURE" in reason.upper()


async def _tls(target: Target, context: ssl.SSLContext, with_cert: bool,
               timeout: float) -> dict[str, Any]:
    host, port = _endpoint(target)
    start = time.monotonic()
    base: dict[str, Any] = {"client_certificate": with_cert}
    try:
        reader, writer = await connect_gateway(host, port, target.host, context,
                                               timeout=timeout, verify_name=host)
    except TunnelError as exc:
        if exc.step == "gateway_refused":
            return {**base, "status": "refused", "ms": _ms(start), "detail": exc.detail}
        status = "timeout" if isinstance(exc.__cause__, TimeoutError) else "failed"
        return {**base, "status": status, "ms": _ms(start), "step": exc.step,
                "detail": exc.detail}
    handshake_ms = _ms(start)
    tls_obj = writer.get_extra_info("ssl_object")
    base.update(protocol=tls_obj.version() if tls_obj else None, ms=handshake_ms)
    try:  # nothing is sent: the office PC (RDP) waits for us, so silence means "accepted"
        data = await asyncio.wait_for(reader.read(1), POST_HANDSHAKE_WAIT_S)
        if data:
            result = {**base, "status": "ok"}
        else:  # nginx stream closes without an alert (its log: "client sent no required SSL
            # certificate"); with a certificate the same silence can also mean no office PC.
            result = {**base, "status": "refused", "detail": _CLOSED_WITH if with_cert
                      else _CLOSED_WITHOUT}
    except TimeoutError:
        result = {**base, "status": "ok"}
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        result = {**base, "status": "refused" if _refusal(reason) else "failed",
                  "detail": reason}
    except OSError as exc:
        result = {**base, "status": "refused", "detail": exc.strerror or type(exc).__name__}
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    return result


async def probe_target(target: Target, make_context: ContextFactory | None, with_cert: bool,
                       timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    host, port = _endpoint(target)
    out: dict[str, Any] = {"target": target.id, "mode": target.mode,
                           "endpoint": f"{host}:{port}"}
    out["dns"], infos = await _resolve(host, port, timeout)
    out["tcp"] = await _tcp(infos, timeout) if infos else {"status": "skipped"}
    if target.mode != "tunnel" or not target.gateway_ca_pem or make_context is None:
        # RD Gateway and direct targets are checked by the RDP client itself (system trust).
        out["tls"] = {"status": "skipped", "detail": f"not a tunnel target ({target.mode})"}
    elif out["tcp"]["status"] != "ok":
        out["tls"] = {"status": "skipped", "detail": "no TCP connection"}
    else:
        try:
            context = make_context(target.gateway_ca_pem)
        except Exception as exc:  # an unusable CA or key: say so rather than skip silently
            out["tls"] = {"status": "failed", "detail": f"client context: {type(exc).__name__}"}
        else:
            out["tls"] = await _tls(target, context, with_cert, timeout)
    return out


async def _probe_all(targets: tuple[Target, ...], make_context: ContextFactory | None,
                     with_cert: bool, timeout: float) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(probe_target(t, make_context, with_cert, timeout)
                                       for t in targets)))


def check_targets(targets: tuple[Target, ...], make_context: ContextFactory | None, *,
                  with_cert: bool, certificate_note: str | None = None,
                  timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """Every target concurrently; the whole run is bounded by about three timeouts."""
    results = asyncio.run(_probe_all(targets, make_context, with_cert, timeout))
    return {"schema": SCHEMA, "timeout_s": timeout, "client_certificate": with_cert,
            "client_certificate_note": certificate_note, "targets": results}


def tunnel_context_factory(identity: Identity | None) -> ContextFactory:
    """Contexts as the session tunnel builds them: only the gateway CA, our name check later."""
    def make(ca_pem: str) -> ssl.SSLContext:
        ctx = client_context(ca_pem, identity)
        ctx.check_hostname = False  # connect_gateway checks the gateway name (SNI = office PC)
        return ctx

    return make
