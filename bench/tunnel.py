"""The agent's session tunnel against ``stunnel4`` in client mode, through one nginx gateway.

Topology (all loopback): load generator -> [agent Tunnel | stunnel client] -> nginx ``stream``
mutual TLS (testkit/gateway.py) -> SNI route -> sink or echo (bench/sinks.py). The
tunnel, the sinks and the load generator are separate processes, so the GIL of one does not
slow another. Throughput: bulk bytes into the sink; latency: p50 of a 64-byte echo.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    REPO,
    Options,
    Result,
    Unavailable,
    median,
    need_tools,
    python,
    ratio,
    scratch_dir,
)
from testkit.procs import stop

STREAMS = (1, 20, 100)
# The two headline keys are the worst point over STREAMS ("at every load"); then each point.
KEYS = ("tunnel_throughput_vs_stunnel", "tunnel_p50_latency_vs_stunnel",
        *(f"tunnel_throughput_vs_stunnel_{n}" for n in STREAMS),
        *(f"tunnel_p50_latency_vs_stunnel_{n}" for n in STREAMS))
SINK_SNI = "sink.office.city.example"
ECHO_SNI = "echo.office.city.example"
CHUNK = bytes(range(256)) * 4096  # 1 MiB per send
PING = b"p" * 64
MB = 1e6
PROFILE_DIR = REPO / "artifacts" / "bench"


@dataclass(frozen=True)
class Sizes:
    bulk_bytes: int  # per run, split across the streams
    pings: int  # per stream
    repeats: int


Connect = Callable[[str, int], str]  # (sni, streams) -> started local port, via a context


def _write_pki(d: Path) -> None:
    from testkit.pki import issue, make_ca, server_pair  # noqa: PLC0415 (test PKI, bench only)

    ca = make_ca("Bench Gateway CA")
    user = issue(ca, "Bench User")
    server = server_pair(ca, "localhost")
    (d / "ca.pem").write_bytes(ca.cert_pem)
    (d / "user.pem").write_bytes(user.cert_pem)
    (d / "user.key").write_bytes(user.key_pem())
    (d / "user.key").chmod(0o600)
    (d / "server.pem").write_bytes(server.cert_pem + ca.cert_pem)
    (d / "server.key").write_bytes(server.key_pem())


def _run_threads(n: int, target: Callable[[int, threading.Barrier], None]) -> None:
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def wrapped(i: int) -> None:
        try:
            target(i, barrier)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=wrapped, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    if errors:
        raise RuntimeError(f"stream failed: {errors[0]!r}")


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed early")
        data += chunk
    return data


def bulk(port: int, streams: int, total: int) -> float:
    """Bytes per second into the sink, all streams together."""
    per = max(len(CHUNK), total // streams // len(CHUNK) * len(CHUNK))
    starts: list[float] = []
    ends: list[float] = []
    view = memoryview(CHUNK)

    def one(_i: int, barrier: threading.Barrier) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
            s.sendall(struct.pack(">Q", per))
            if _recv_exact(s, 1) != b"R":
                raise ConnectionError("sink not ready")
            barrier.wait()
            starts.append(time.perf_counter())
            for _ in range(per // len(CHUNK)):
                s.sendall(view)
            if _recv_exact(s, 1) != b"K":
                raise ConnectionError("sink did not confirm")
            ends.append(time.perf_counter())

    _run_threads(streams, one)
    return per * streams / (max(ends) - min(starts))


def latency(port: int, streams: int, pings: int) -> float:
    """p50 seconds of a 64-byte round trip, over every stream's samples."""
    samples: list[float] = []
    lock = threading.Lock()

    def one(_i: int, barrier: threading.Barrier) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(20):  # handshake and warm-up, not counted
                s.sendall(PING)
                _recv_exact(s, len(PING))
            barrier.wait()
            mine = []
            for _ in range(pings):
                t = time.perf_counter()
                s.sendall(PING)
                _recv_exact(s, len(PING))
                mine.append(time.perf_counter() - t)
            with lock:
                samples.extend(mine)

    _run_threads(streams, one)
    return median(samples)


@contextlib.contextmanager
def _sinks() -> Iterator[tuple[int, int]]:
    proc = subprocess.Popen([python(), "-m", "bench.sinks"], cwd=REPO, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        sink, echo = (int(x) for x in proc.stdout.readline().split())
        yield sink, echo
    finally:
        if proc.stdin:
            proc.stdin.close()
        stop(proc)


@contextlib.contextmanager
def _gateway(d: Path, sink: int, echo: int) -> Iterator[int]:
    import pytest  # noqa: PLC0415 (the tests' gateway helpers skip through pytest)

    from testkit import gateway  # noqa: PLC0415

    try:
        with gateway.nginx_gateway(
                d, server_chain_pem=(d / "server.pem").read_bytes(),
                server_key_pem=(d / "server.key").read_bytes(),
                client_ca_pem=(d / "ca.pem").read_bytes(),
                routes={SINK_SNI: sink, ECHO_SNI: echo}, default_port=1) as gw:
            yield gw.port
    except (pytest.skip.Exception, pytest.fail.Exception) as exc:
        raise Unavailable(str(exc)) from exc


@contextlib.contextmanager
def _stunnel(d: Path, gw_port: int) -> Iterator[dict[str, int]]:
    from testkit.gateway import free_port, wait_port  # noqa: PLC0415

    ports = {SINK_SNI: free_port(), ECHO_SNI: free_port()}
    services = "".join(f"""
[{sni.split('.')[0]}]
client = yes
accept = 127.0.0.1:{port}
connect = 127.0.0.1:{gw_port}
sni = {sni}
cert = {d}/user.pem
key = {d}/user.key
CAfile = {d}/ca.pem
verifyChain = yes
checkHost = localhost
""" for sni, port in ports.items())
    # Nagle off on both sides, as asyncio does for the agent's sockets: a fair latency match.
    conf = (f"foreground = yes\npid =\ndebug = 3\noutput = {d}/stunnel.log\n"
            "socket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n" + services)
    (d / "stunnel.conf").write_text(conf)
    proc = subprocess.Popen(["stunnel4", str(d / "stunnel.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for port in ports.values():
            wait_port(port, proc)
        yield ports
    finally:
        stop(proc)


@contextlib.contextmanager
def _agent_tunnel(d: Path, gw_port: int, sni: str, streams: int,
                  profile: Path | None = None) -> Iterator[int]:
    argv = [python(), "-m", "bench.tunnel_host", str(gw_port), sni, str(streams), str(d)]
    proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=(d / "tunnel_host.log").open("ab"))
    spy: subprocess.Popen[bytes] | None = None
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip():
            raise RuntimeError(f"tunnel host failed: {(d / 'tunnel_host.log').read_text()[-400:]}")
        if profile is not None:  # every thread, sampled from outside (cProfile sees one thread)
            spy = subprocess.Popen([str(_py_spy()), "record", "--pid", str(proc.pid), "--rate",
                                    "250", "--format", "raw", "--output", str(profile),
                                    "--nonblocking"], stdout=subprocess.DEVNULL,
                                   stderr=(d / "py-spy.log").open("ab"))
            time.sleep(1.0)  # attached
        try:
            yield int(line)
        except Exception as exc:
            log = (d / "tunnel_host.log").read_text(errors="replace")[-600:]
            raise RuntimeError(f"{exc}; tunnel host log: {log!r}") from exc
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its samples on SIGINT
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy.wait(30)
        assert proc.stdin is not None
        proc.stdin.close()  # all streams are done: it exits
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    finally:
        if spy is not None:
            stop(spy)
        stop(proc)


def _py_spy() -> Path:
    return Path(python()).parent / "py-spy"


def _pings(sizes: Sizes, streams: int) -> int:
    """Per stream: 2000 alone, 200 each of 20, 50 each of 100 (the full sizes)."""
    return sizes.pings if streams == 1 else max(10, sizes.pings * 2 // streams)


Via = Callable[[str, int], contextlib.AbstractContextManager[int]]


def _measure(vias: dict[str, Via], sizes: Sizes, streams: int,
             ) -> dict[str, tuple[float, float]]:
    """Medians of (bytes/s, p50 s) per relay; the relays take turns within every repeat, so a
    change of load on the shared machine lands on both sides of the ratio."""
    rates: dict[str, list[float]] = {k: [] for k in vias}
    p50s: dict[str, list[float]] = {k: [] for k in vias}
    for _ in range(sizes.repeats):
        for name, port_for in vias.items():
            with port_for(SINK_SNI, streams) as port:
                rates[name].append(bulk(port, streams, sizes.bulk_bytes))
            with port_for(ECHO_SNI, streams) as port:
                p50s[name].append(latency(port, streams, _pings(sizes, streams)))
    return {k: (median(rates[k]), median(p50s[k])) for k in vias}


def _profile(d: Path, gw_port: int, sizes: Sizes, kind: str, streams: int) -> list[str]:
    """py-spy samples of the agent's tunnel process (all threads) during one run."""
    if not _py_spy().exists():
        return ["  (no profile: py-spy is not installed in the venv; pip install py-spy)"]
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    out = PROFILE_DIR / f"tunnel-{streams}streams-{kind}.txt"
    out.unlink(missing_ok=True)
    sni = SINK_SNI if kind == "bulk" else ECHO_SNI
    with _agent_tunnel(d, gw_port, sni, streams, out) as port:
        if kind == "bulk":
            bulk(port, streams, sizes.bulk_bytes)
        else:
            latency(port, streams, _pings(sizes, streams))
    if not out.exists():
        return [f"  (no profile: py-spy wrote nothing; see {d / 'py-spy.log'})"]
    leaves: dict[str, int] = {}
    total = 0
    for row in out.read_text(errors="replace").splitlines():
        stack, _, count = row.rpartition(" ")
        if not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        leaves[leaf] = leaves.get(leaf, 0) + int(count)
        total += int(count)
    rows = [f"  profile of the agent tunnel, {streams}-stream {kind} ({out.relative_to(REPO)}, "
            f"py-spy, {total} busy samples at 250 Hz over all threads), top self time:"]
    for leaf, n in sorted(leaves.items(), key=lambda kv: -kv[1])[:8]:
        rows.append(f"    {n / max(total, 1) * 100:5.1f} %  {leaf}")
    return rows


def run(opts: Options) -> Result:
    need_tools("nginx", "stunnel4")
    sizes = Sizes(bulk_bytes=opts.pick(512 << 20, 8 << 20), pings=opts.pick(2000, 50),
                  repeats=opts.pick(3, 1))
    results: dict[tuple[str, int], tuple[float, float]] = {}
    rows: list[str] = []
    with contextlib.ExitStack() as stack:
        d = stack.enter_context(scratch_dir("tunnel"))
        _write_pki(d)
        sink, echo = stack.enter_context(_sinks())
        gw = stack.enter_context(_gateway(d, sink, echo))
        with _stunnel(d, gw) as st_ports:
            @contextlib.contextmanager
            def via_stunnel(sni: str, _streams: int) -> Iterator[int]:
                yield st_ports[sni]

            def via_agent(sni: str, streams: int) -> contextlib.AbstractContextManager[int]:
                return _agent_tunnel(d, gw, sni, streams)

            for streams in STREAMS:
                got = _measure({"stunnel": via_stunnel, "agent": via_agent}, sizes, streams)
                for name, value in got.items():
                    results[name, streams] = value
        values: dict[str, float | None] = {}
        for streams in STREAMS:
            a_rate, a_p50 = results["agent", streams]
            s_rate, s_p50 = results["stunnel", streams]
            values[f"tunnel_throughput_vs_stunnel_{streams}"] = ratio(a_rate, s_rate)
            values[f"tunnel_p50_latency_vs_stunnel_{streams}"] = ratio(a_p50, s_p50)
            rows.append(f"{streams:>3} stream(s): throughput agent {a_rate / MB:.0f} MB/s, "
                        f"stunnel {s_rate / MB:.0f} MB/s -> {ratio(a_rate, s_rate)}; p50 echo "
                        f"agent {a_p50 * 1e6:.0f} us, stunnel {s_p50 * 1e6:.0f} us -> "
                        f"{ratio(a_p50, s_p50)}")
        thr = min((values[f"tunnel_throughput_vs_stunnel_{n}"] or 0.0) for n in STREAMS)
        lat = max((values[f"tunnel_p50_latency_vs_stunnel_{n}"] or 0.0) for n in STREAMS)
        if not opts.quick:  # where the agent's time goes at the worst point of each miss
            worst_thr = min(STREAMS, key=lambda n: values[f"tunnel_throughput_vs_stunnel_{n}"]
                            or 0.0)
            worst_lat = max(STREAMS, key=lambda n: values[f"tunnel_p50_latency_vs_stunnel_{n}"]
                            or 0.0)
            if thr < 1.0:
                rows += _profile(d, gw, sizes, "bulk", worst_thr)
            if lat > 1.0:
                rows += _profile(d, gw, sizes, "echo", worst_lat)
    return Result("tunnel", {"tunnel_throughput_vs_stunnel": thr,
                             "tunnel_p50_latency_vs_stunnel": lat, **values}, rows)
