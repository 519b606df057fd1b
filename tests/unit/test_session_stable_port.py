"""The tunnel listens on the target's stable loopback port, and falls back when it is taken
(issue 17, finding 8). Real sockets on 127.0.0.1; no gateway is contacted (start() only
resolves the gateway name, here 127.0.0.1)."""

from __future__ import annotations

import asyncio
import socket
import ssl

from agent.session.launch import stable_ports
from agent.session.tunnel import Tunnel


def _context() -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = False  # the tunnel checks the gateway name itself
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


async def _start(ports: tuple[int, ...]) -> tuple[int, bool]:
    t = Tunnel("127.0.0.1", 9, "office.example", _context(), timeout=2.0, local_ports=ports)
    port = await t.start()
    fallback = t.port_fallback
    await t.close()
    return port, fallback


def test_stable_port_is_used_and_a_taken_one_falls_back() -> None:
    ports = stable_ports("issue17-test-target")
    port, fallback = asyncio.run(_start(ports))
    assert port == ports[0] and not fallback
    holders = []
    try:
        for p in ports:  # take every stable port
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            s.listen(1)
            holders.append(s)
        port, fallback = asyncio.run(_start(ports))
        assert fallback and port not in ports
        holders[1].close()  # the second one frees up: used before any random port
        port, fallback = asyncio.run(_start(ports))
        assert port == ports[1] and not fallback
    finally:
        for s in holders:
            s.close()
