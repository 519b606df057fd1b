"""``byod-admin rdp-fingerprint HOST:PORT``: the office PC's RDP certificate SHA-256, for a
target's ``server_cert_sha256`` in the policy.

Run it by IT from the office LAN (where the office PC is the one you think it is): it sends an
X.224 Connection Request with an RDP Negotiation Request for TLS (MS-RDPBCGR 2.2.1.1), reads the
X.224 Connection Confirm (2.2.1.2), starts TLS and prints the fingerprint of the certificate the
server presents, in FreeRDP's form (``ab:cd:...``). Nothing is sent inside TLS and nothing is
trusted: the point is to read the certificate so the policy can pin it. Every wait is bounded.

Exit codes: 0 the fingerprint is printed (stdout); 1 no RDP certificate could be read (the port
is not an RDP server, offers no TLS, is closed, or did not answer within ``--timeout``), with one
line on stderr naming the address and why; 2 the address is not HOST:PORT.
Tested against a real xrdp (tests/integration/test_rdp_fingerprint.py).
"""

from __future__ import annotations

import argparse
import hashlib
import socket
import ssl
import struct
import sys

from agent.core import exitcodes, i18n
from agent.core.messages import msg
from agent.policy.errors import PolicyRefused
from agent.policy.schema import parse_host_port

PROTOCOL_SSL = 0x1
PROTOCOL_HYBRID = 0x2
TIMEOUT_S = 5.0


def connection_request() -> bytes:
    """TPKT + X.224 CR + RDP_NEG_REQ(TLS | CredSSP)."""
    neg = struct.pack("<BBHI", 0x01, 0x00, 8, PROTOCOL_SSL | PROTOCOL_HYBRID)
    x224 = bytes([len(neg) + 6, 0xE0, 0, 0, 0, 0, 0]) + neg
    return struct.pack(">BBH", 3, 0, len(x224) + 4) + x224


class NotRdp(ValueError):
    pass


def parse_confirm(data: bytes) -> int:
    """The protocol the server selected; NotRdp for anything that is not an X.224 CC."""
    if len(data) < 11 or data[0] != 3 or struct.unpack(">H", data[2:4])[0] != len(data):
        raise NotRdp("it does not answer as an RDP server (no TPKT header)")
    if data[5] & 0xF0 != 0xD0:
        raise NotRdp("not an X.224 Connection Confirm")
    if len(data) < 19:
        return 0  # no negotiation response: standard RDP security only (no certificate)
    kind, _flags, length, value = struct.unpack("<BBHI", data[11:19])
    if length != 8:
        raise NotRdp("bad negotiation length")
    if kind == 0x03:  # RDP_NEG_FAILURE
        raise NotRdp(f"the server refused TLS (failure code {value})")
    if kind != 0x02:
        raise NotRdp("unknown negotiation response")
    return int(value)


def fingerprint(der: bytes) -> str:
    digest = hashlib.sha256(der).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 64, 2))


def _recv_tpkt(sock: socket.socket) -> bytes:
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            raise NotRdp("the server closed the connection")
        head += chunk
    if head[0] != 3:  # e.g. an SSH or SMTP banner: another service speaks first
        raise NotRdp("it does not answer as an RDP server (no TPKT header)")
    length = struct.unpack(">H", head[2:4])[0]
    if not 11 <= length <= 64:
        raise NotRdp("unexpected X.224 length")
    body = b""
    while len(body) < length - 4:
        chunk = sock.recv(length - 4 - len(body))
        if not chunk:
            raise NotRdp("the server closed the connection")
        body += chunk
    return head + body


def read_certificate(host: str, port: int, timeout: float = TIMEOUT_S) -> bytes:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(connection_request())
        selected = parse_confirm(_recv_tpkt(sock))
        if not selected & (PROTOCOL_SSL | PROTOCOL_HYBRID):
            raise NotRdp("the server offers no TLS (standard RDP security only)")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False  # reading the certificate to pin it, not trusting it
        ctx.verify_mode = ssl.CERT_NONE
        with ctx.wrap_socket(sock, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    if not der:
        raise NotRdp("no certificate")
    return der


def run(args: argparse.Namespace) -> int:
    lang = i18n.detect_language()
    try:
        host, port = parse_host_port("HOST:PORT", args.address)
    except PolicyRefused as exc:
        print(i18n.render(exc.message, lang), file=sys.stderr)
        return exitcodes.USAGE
    try:
        der = read_certificate(host, port, args.timeout)
    except (OSError, NotRdp, ssl.SSLError) as exc:
        detail = str(exc) or type(exc).__name__  # a bare TimeoutError has no text
        print(i18n.render(msg("admin.rdp.failed", address=args.address,
                              detail=detail[:200]), lang), file=sys.stderr)
        return exitcodes.NOT_COMPLIANT
    print(fingerprint(der))
    print(i18n.render(msg("admin.rdp.hint"), lang))
    return exitcodes.OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser("rdp-fingerprint", help="print an office PC's RDP certificate SHA-256 "
                       "(for server_cert_sha256)",
                       epilog="exit codes: 0 printed; 1 no RDP certificate could be read (not an "
                       "RDP server, no TLS, closed, or no answer within --timeout); "
                       "2 not HOST:PORT")
    r.add_argument("address", help="HOST:PORT of the office PC (3389)")
    r.add_argument("--timeout", type=float, default=TIMEOUT_S)
    r.set_defaults(handler=run)
