"""The "office PC" behind the gateway, in its own process: a bulk sink and the tests' echo server.

Sink protocol (per connection): the client sends an 8-byte big-endian length N; the sink answers
``R``; the client sends N bytes; the sink answers ``K`` and closes. Timing starts after ``R`` so
TLS handshakes through the tunnel are not counted as transfer time.

Usage: python -m bench.sinks  -> prints "SINK_PORT ECHO_PORT", runs until stdin closes.
"""

from __future__ import annotations

import contextlib
import socketserver
import struct
import sys
import threading

from testkit.gateway import echo_server

BUF = 1 << 20


class _Sink(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock = self.request
        with contextlib.suppress(OSError):
            header = b""
            while len(header) < 8:
                chunk = sock.recv(8 - len(header))
                if not chunk:
                    return
                header += chunk
            (left,) = struct.unpack(">Q", header)
            sock.sendall(b"R")
            buf = bytearray(BUF)
            while left > 0:
                n = sock.recv_into(buf, min(BUF, left))
                if n == 0:
                    return
                left -= n
            sock.sendall(b"K")


class SinkServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main() -> int:
    sink = SinkServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    with echo_server() as echo_port:
        print(sink.server_address[1], echo_port, flush=True)
        sys.stdin.read()  # the parent closes our stdin to stop us
    sink.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
