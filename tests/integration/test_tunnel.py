"""The session tunnel through a real nginx mutual-TLS gateway: integrity, refusals, no leaks."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import socket
import ssl
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from agent.session.tunnel import Tunnel, TunnelError, connect_gateway, new_event_loop
from testkit.gateway import Gateway, echo_server, nginx_gateway
from testkit.pki import Pair, issue, make_ca, server_pair

CA = make_ca("Example City Gateway CA")
FOREIGN = make_ca("Somewhere Else CA")
USER = issue(CA, "Yamada Taro")
OFFICE = "pc-0123.office.city.example"


def _client_context(tmp: Path, ca: Pair = CA, user: Pair | None = USER) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=None)
    ctx.load_verify_locations(cadata=ca.cert_pem.decode())
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False  # the tunnel checks the gateway name itself (SNI = office PC)
    if user is not None:  # encrypted on disk, as the keystore keeps it
        password = secrets.token_bytes(16)
        (tmp / "user.pem").write_bytes(user.cert_pem)
        (tmp / "user.key").write_bytes(user.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password)))
        ctx.load_cert_chain(tmp / "user.pem", tmp / "user.key", password=lambda: password)
    return ctx


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("gw")
    server = server_pair(CA, "gateway.city.example", "localhost")
    with echo_server() as echo_port, nginx_gateway(
            root, server_chain_pem=server.cert_pem + CA.cert_pem,
            server_key_pem=server.key_pem(), client_ca_pem=CA.cert_pem,
            routes={OFFICE: echo_port}, default_port=1) as gw:
        yield gw


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _roundtrip(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def send() -> None:
        for i in range(0, len(payload), 65536):
            writer.write(payload[i:i + 65536])
            await writer.drain()

    sender = asyncio.create_task(send())
    got = await reader.readexactly(len(payload))
    await sender
    writer.close()
    await writer.wait_closed()
    return got


def test_many_concurrent_streams_arrive_intact(gateway: Gateway, tmp_path: Path) -> None:
    async def main() -> None:
        t = Tunnel("localhost", gateway.port, OFFICE, _client_context(tmp_path),
                   max_connections=12)
        port = await t.start()
        payloads = [secrets.token_bytes(3 * 1024 * 1024) for _ in range(12)]
        results = await asyncio.gather(*(_roundtrip(port, p) for p in payloads))
        for sent, got in zip(payloads, results, strict=True):
            assert hashlib.sha256(got).digest() == hashlib.sha256(sent).digest()
        await t.wait()
        assert t.stats.bytes_up == t.stats.bytes_down == sum(map(len, payloads))
        assert t.stats.errors == []
        await t.close()

    asyncio.run(main())


def test_wait_returns_only_when_every_connection_has_ended(gateway: Gateway,
                                                           tmp_path: Path) -> None:
    """The first connection to end must not end the tunnel for a second one still running."""
    async def main() -> None:
        t = Tunnel("localhost", gateway.port, OFFICE, _client_context(tmp_path),
                   max_connections=2, half_close_grace=0.2)
        port = await t.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"still here")
        assert await reader.readexactly(10) == b"still here"
        assert await _roundtrip(port, b"short") == b"short"  # the second one ends
        waiting = asyncio.create_task(t.wait())
        await asyncio.sleep(1.5)  # well past the short one's half-close grace
        assert not waiting.done()
        writer.write(b"and again")  # the long one still works
        assert await reader.readexactly(9) == b"and again"
        writer.close()
        await asyncio.wait_for(waiting, 10)
        await t.close()

    asyncio.run(main())


def test_listener_is_loopback_only_and_closes_after_the_first_client(
        gateway: Gateway, tmp_path: Path) -> None:
    async def main() -> None:
        t = Tunnel("localhost", gateway.port, OFFICE, _client_context(tmp_path))
        port = await t.start()
        assert t._server is not None
        assert {s.getsockname()[0] for s in t._server.sockets} == {"127.0.0.1"}
        assert await _roundtrip(port, b"x" * 1000) == b"x" * 1000
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
        await t.close()

    asyncio.run(main())


def test_a_local_peer_that_is_not_our_client_is_refused(gateway: Gateway, tmp_path: Path) -> None:
    async def main() -> None:
        t = Tunnel("localhost", gateway.port, OFFICE, _client_context(tmp_path),
                   peer_allowed=lambda peer: False)
        port = await t.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await reader.read() == b""  # closed without reaching the gateway
        writer.close()
        assert t.stats.refused_peers == 1 and t.stats.connections == 0
        await t.close()

    asyncio.run(main())


@pytest.mark.parametrize("client", ["none", "foreign"])
def test_gateway_refuses_missing_or_foreign_certificate(gateway: Gateway, tmp_path: Path,
                                                        client: str) -> None:
    user = None if client == "none" else issue(FOREIGN, "Intruder")

    async def main() -> None:
        t = Tunnel("localhost", gateway.port, OFFICE, _client_context(tmp_path, user=user))
        port = await t.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x03\x00\x00\x13")  # the first bytes of an RDP X.224 request
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        await asyncio.wait_for(t.wait(), 10)
        assert any(e.startswith(("gateway_refused", "gateway_closed")) for e in t.stats.errors), \
            t.stats.errors
        assert t.stats.bytes_down == 0
        await t.close()

    asyncio.run(main())


def test_agent_refuses_a_gateway_from_a_foreign_ca(gateway: Gateway, tmp_path: Path) -> None:
    async def main() -> None:
        with pytest.raises(TunnelError) as err:
            await connect_gateway("localhost", gateway.port, OFFICE,
                                  _client_context(tmp_path, ca=FOREIGN), timeout=5)
        assert err.value.step == "tls" and "not trusted" in err.value.detail

    asyncio.run(main())


def test_unreachable_gateway_names_the_step(tmp_path: Path) -> None:
    async def main() -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed_port = s.getsockname()[1]
        with pytest.raises(TunnelError) as err:
            await connect_gateway("127.0.0.1", closed_port, OFFICE, _client_context(tmp_path),
                                  timeout=3)
        assert err.value.step == "tcp"
        with pytest.raises(TunnelError) as err:
            await connect_gateway("no-such-host.invalid", 443, OFFICE,
                                  _client_context(tmp_path), timeout=3)
        assert err.value.step == "resolve"

    asyncio.run(main())


def test_abrupt_disconnects_leak_no_file_descriptors(gateway: Gateway, tmp_path: Path) -> None:
    ctx = _client_context(tmp_path)

    async def one(abort_after: int) -> None:
        t = Tunnel("localhost", gateway.port, OFFICE, ctx, half_close_grace=1.0)
        port = await t.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(secrets.token_bytes(abort_after))
        await writer.drain()
        await reader.read(1)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST, as a crashing client does
        await asyncio.wait_for(t.wait(), 10)
        await t.close()

    async def main() -> None:
        await one(1000)  # warm-up: the event loop's own descriptors
        before = _open_fds()
        for n in (10, 100_000, 1_000_000, 10, 500_000):
            await one(n)
        await asyncio.sleep(0.2)
        assert _open_fds() <= before

    asyncio.run(main())


def test_streams_arrive_intact_on_the_products_event_loop(gateway: Gateway,
                                                          tmp_path: Path) -> None:
    """BackgroundTunnel runs ``new_event_loop()`` (uvloop where installed): the same relay there,
    with records split across reads (payloads of odd sizes) and both directions at once."""
    async def main() -> None:
        t = Tunnel("localhost", gateway.port, OFFICE, _client_context(tmp_path),
                   max_connections=4)
        port = await t.start()
        payloads = [secrets.token_bytes(n) for n in (1, 16_385, 1_000_003, 2_500_001)]
        results = await asyncio.gather(*(_roundtrip(port, p) for p in payloads))
        assert results == payloads
        await asyncio.wait_for(t.wait(), 20)
        assert t.stats.bytes_up == t.stats.bytes_down == sum(map(len, payloads))
        assert t.stats.errors == []
        await t.close()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1 is deprecated")  # on purpose
def test_a_context_that_allows_tls_below_1_2_is_refused(tmp_path: Path) -> None:
    ctx = _client_context(tmp_path)
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    with pytest.raises(ValueError, match=r"TLS 1\.2"):
        Tunnel("localhost", 443, OFFICE, ctx)
