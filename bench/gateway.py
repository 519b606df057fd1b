"""HAProxy pass-through (issue 14): bulk bytes through the shipped installer/gateway/haproxy.cfg,
TLS with a posture credential from byod-verifier, to a sink / the same bytes over plain loopback
TCP to the same sink. Best of 3 runs of 1 GiB each (32 MiB with --quick). The client is Python's
ssl module, so the figure includes its cost (RECIPES.md measured ~7 Gbit/s with a C client).

Latency (issue 20): p50 of a 64-byte round trip to userB's office PC (the demo's echo stand-in)
through HAProxy with userB's own credential / straight to the same echo over loopback TCP; 2000
pings after 20 warm-up ones (200 with --quick), the two paths taking turns, medians of 3.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import statistics
import struct
import threading
import time

from bench.common import Options, Result, Unavailable, ratio, scratch_dir

KEYS = ("gateway_throughput_vs_direct", "gateway_p50_latency_vs_direct")
PING = b"p" * 64
CHUNK = 256 * 1024


class Sink:
    """Reads an 8-byte length, then that many bytes, then answers one byte."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _serve(conn: socket.socket) -> None:
        with conn:
            head = b""
            while len(head) < 8:
                part = conn.recv(8 - len(head))
                if not part:
                    return
                head += part
            left = struct.unpack("!Q", head)[0]
            while left > 0:
                data = conn.recv(min(left, 1 << 20))
                if not data:
                    return
                left -= len(data)
            conn.sendall(b"k")

    def close(self) -> None:
        self.sock.close()


def push(sock: socket.socket, total: int) -> float:
    """Bytes per second until the sink confirms it has all of them."""
    block = b"\0" * CHUNK
    start = time.perf_counter()
    sock.sendall(struct.pack("!Q", total))
    sent = 0
    while sent < total:
        sock.sendall(block)
        sent += CHUNK
    if sock.recv(1) != b"k":
        raise RuntimeError("sink did not confirm")
    return total / (time.perf_counter() - start)


def p50_echo(sock: socket.socket, pings: int) -> float:
    """p50 seconds of a 64-byte round trip; the echo stand-in first says its name."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(10)
    if not sock.recv(100).endswith(b"\n"):
        raise RuntimeError("no greeting from the office PC stand-in")

    def once() -> float:
        t = time.perf_counter()
        sock.sendall(PING)
        got = 0
        while got < len(PING):
            part = sock.recv(len(PING) - got)
            if not part:
                raise ConnectionError("echo closed early")
            got += len(part)
        return time.perf_counter() - t

    for _ in range(20):
        once()
    return statistics.median(once() for _ in range(pings))


def run(opts: Options) -> Result:
    if shutil.which("haproxy") is None:
        raise Unavailable("haproxy not installed")
    from agent.attest import obtain_credential  # noqa: PLC0415
    from agent.attest.client import VerifierEndpoint, gateway_context  # noqa: PLC0415
    from testkit.verifier import load_user, report  # noqa: PLC0415
    from verifier import demo, pki  # noqa: PLC0415

    total = opts.pick(1 << 30, 32 << 20)
    pings = opts.pick(2000, 200)
    rounds = opts.pick(3, 1)
    with scratch_dir("gateway") as d:
        lay = demo.layout(d / "city")
        sink = Sink(lay.pc_ports["pcA"])  # userA's office PC is the sink
        echo = demo.EchoPC("pcB", lay.pc_ports["pcB"]).start()  # userB's: the echo
        haproxy = demo.start_haproxy(lay)
        verifier = None
        try:
            verifier = demo.start_verifier(lay)  # inside: a verifier that fails stops HAProxy
            ca = (lay.dir / "city-ca.pem").read_text()
            endpoint = VerifierEndpoint(f"https://127.0.0.1:{lay.verifier_port}", ca)

            def session_context(name: str) -> ssl.SSLContext:
                user = load_user(lay, name, d)
                cred = obtain_credential(endpoint, user.identity, report(),
                                         policy_id=demo.POLICY_ID,
                                         policy_serial=demo.POLICY_SERIAL,
                                         agent_version="0.1.0", target="bench")
                cred_path = d / f"{name}-cred.pem"
                pki.write_private(cred_path, cred.certificate_pem.encode())
                return gateway_context(cred_path, user.identity, ca)

            ctx = session_context("userA")
            ctx_b = session_context("userB")
            through, direct = [], []
            for _ in range(rounds):
                raw = socket.create_connection(("127.0.0.1", lay.gateway_port))
                with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    through.append(push(tls, total))
                with socket.create_connection(("127.0.0.1", lay.pc_ports["pcA"])) as plain:
                    direct.append(push(plain, total))
            lat_through, lat_direct = [], []
            for _ in range(rounds):
                raw = socket.create_connection(("127.0.0.1", lay.gateway_port))
                with ctx_b.wrap_socket(raw, server_hostname="localhost") as tls:
                    lat_through.append(p50_echo(tls, pings))
                with socket.create_connection(("127.0.0.1", lay.pc_ports["pcB"])) as plain:
                    lat_direct.append(p50_echo(plain, pings))
        finally:
            if verifier is not None:
                demo.stop_process(verifier)
            demo.stop_process(haproxy)
            sink.close()
            echo.stop()
    t, dr = max(through), max(direct)
    r = ratio(t, dr)
    lt, ld = statistics.median(lat_through), statistics.median(lat_direct)
    rl = ratio(lt, ld)
    rows = [f"through HAProxy TLS {t / 1e6:.0f} MB/s vs direct TCP {dr / 1e6:.0f} MB/s "
            f"(best of {rounds}, {total >> 20} MiB each) -> {r}",
            f"p50 of a 64-byte echo through HAProxy TLS {lt * 1e6:.0f} us vs direct TCP "
            f"{ld * 1e6:.0f} us ({pings} pings, medians of {rounds}) -> {rl}"]
    return Result("gateway", {"gateway_throughput_vs_direct": r,
                              "gateway_p50_latency_vs_direct": rl}, rows)
