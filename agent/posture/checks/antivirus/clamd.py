"""Talk to a running clamd: find its socket in clamd.conf, ask ``zVERSION``, parse the answer.

clamd answers ``ClamAV <engine>/<db version>/<db date>``, the date written by ctime() in the C
locale and the daemon's local time (``ClamAV 1.4.6/27500/Fri Nov 27 12:38:16 2026``). Without a
loaded database it answers just ``ClamAV <engine>``. ``clamdscan --version`` prints the same line
(it asks the daemon). Socket I/O does not go through the runner, so it carries its own timeout and
turns every socket error into a ProbeError.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from agent.core.errors import ParseError, ProbeTimeout, SourceMissing, Unsupported

DEFAULT_CONFIG = "/etc/clamav/clamd.conf"
MAX_REPLY = 4096

# ctime() month and weekday names are fixed English (C locale); strptime's %a/%b follow LC_TIME,
# which Qt sets from the user's locale, so the names are matched here instead.
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_REPLY = re.compile(r"^ClamAV (?P<engine>[0-9][\w.+~-]*)(?:/(?P<db>\d+)/(?P<date>.+))?$")
_CTIME = re.compile(r"^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) "
                    r"(?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2}) (?P<y>\d{4})$")


@dataclass(frozen=True)
class ClamdVersion:
    engine: str
    db_version: int | None  # None: the daemon reported no database
    db_date: datetime | None  # naive, in the daemon's local time


@dataclass(frozen=True)
class ClamdAddress:
    kind: str  # "unix" | "tcp"
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        return self.path if self.kind == "unix" else f"{self.host}:{self.port}"


def parse_version_reply(text: str) -> ClamdVersion:
    line = text.replace("\x00", "").strip()
    m = _REPLY.match(line)
    if m is None:
        raise ParseError("clamd VERSION", line[:80] or "empty answer")
    if m["db"] is None:
        return ClamdVersion(m["engine"], None, None)
    c = _CTIME.match(m["date"].strip())
    if c is None or c["mon"] not in _MONTHS:
        raise ParseError("clamd VERSION", f"database date {m['date'][:40]!r}")
    try:
        when = datetime(int(c["y"]), _MONTHS[c["mon"]], int(c["day"]), int(c["h"]), int(c["m"]),
                        int(c["s"]))
    except ValueError as exc:
        raise ParseError("clamd VERSION", str(exc)) from exc
    return ClamdVersion(m["engine"], int(m["db"]), when)


def config_path_from_cmdline(cmdline: Sequence[str]) -> str | None:
    """The file named by ``-c FILE``, ``-cFILE`` or ``--config-file[=]FILE``."""
    args = list(cmdline[1:])
    for i, arg in enumerate(args):
        if arg in ("-c", "--config-file"):
            return args[i + 1] if i + 1 < len(args) else None
        if arg.startswith("--config-file="):
            return arg.partition("=")[2]
        if arg.startswith("-c") and not arg.startswith("--"):
            return arg[2:]
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_config(text: str, where: str = DEFAULT_CONFIG) -> ClamdAddress:
    """The address to ask: LocalSocket first, else TCPSocket on a loopback address only."""
    local: str | None = None
    port: int | None = None
    addrs: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        key, value = key.lower(), value.strip().strip('"')
        if key == "localsocket" and value:
            local = value
        elif key == "tcpsocket":
            try:
                port = int(value)
            except ValueError as exc:
                raise ParseError(where, f"TCPSocket {value[:20]!r}") from exc
        elif key == "tcpaddr" and value:
            addrs.append(value)
    if local:
        if not local.startswith("/"):
            raise ParseError(where, f"LocalSocket is not absolute: {local[:60]!r}")
        return ClamdAddress("unix", path=local)
    if port is not None:
        if not addrs:  # clamd then listens on every address, loopback included
            return ClamdAddress("tcp", host="127.0.0.1", port=port)
        for a in addrs:
            if _is_loopback(a):
                return ClamdAddress("tcp", host=a, port=port)
        raise SourceMissing(f"clamd socket in {where}", "TCPSocket is not on a loopback address")
    raise ParseError(where, "no LocalSocket or TCPSocket")


def query_version(address: ClamdAddress, timeout: float, unix_path: str | None = None) -> str:
    """Send ``zVERSION`` and return the answer; every failure is a ProbeError.

    ``unix_path`` is where the socket lives on this filesystem (the probe maps it into its root).
    """
    deadline = time.monotonic() + timeout
    what = f"clamd socket {address}"
    try:
        if address.kind == "unix":
            if sys.platform == "win32":  # clamd on Windows listens on TCP only
                raise Unsupported("clamd UNIX socket on Windows")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(unix_path or address.path)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection((address.host, address.port), timeout=timeout)
        with sock:
            sock.sendall(b"zVERSION\0")
            data = b""
            while b"\0" not in data and len(data) < MAX_REPLY:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                sock.settimeout(remaining)
                chunk = sock.recv(MAX_REPLY)
                if not chunk:
                    break
                data += chunk
    except TimeoutError as exc:  # socket.timeout is TimeoutError since 3.10
        raise ProbeTimeout(what, timeout) from exc
    except OSError as exc:
        raise SourceMissing(what, exc.strerror or type(exc).__name__) from exc
    return data.partition(b"\0")[0].decode("utf-8", errors="replace")
