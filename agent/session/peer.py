"""Which local process opened a loopback connection, so the tunnel serves only our client.

Any program on the PC could connect to the tunnel's 127.0.0.1 port in the instant between the
listener opening and the RDP client connecting. Where the OS tells us the owner of the other end
(Linux /proc, Windows GetExtendedTcpTable: both through psutil), only the launched client's
process tree is served. Where it does not (macOS without root, a client started through
``open -a``), the first connection is served and the listener closes behind it.
"""

from __future__ import annotations

import logging
import threading

import psutil

from agent.session.procs import is_in_tree

log = logging.getLogger("agent.session")


def owner_pid(peer: tuple[str, int], listen_port: int) -> int | None:
    """The PID owning the client end ``peer`` of a connection to 127.0.0.1:``listen_port``."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return None
    for c in conns:
        if (c.laddr and c.raddr and c.laddr.port == peer[1] and c.laddr.ip == peer[0]
                and c.raddr.port == listen_port):
            return c.pid
    return None


class PeerCheck:
    """``peer_allowed`` for the Tunnel: the client's tree where the OS can tell, else anyone."""

    def __init__(self, *, strict: bool) -> None:
        self.strict = strict  # False when the client is not our child (macOS ``open -a``)
        self.listen_port = 0
        self._client_pid: int | None = None
        self._known = threading.Event()

    def set_client(self, pid: int) -> None:
        self._client_pid = pid
        self._known.set()

    def __call__(self, peer: tuple[str, int]) -> bool:
        if not self.strict:
            return True
        # Popen returns before the client can connect in practice; wait briefly to be sure.
        if not self._known.wait(timeout=5.0) or self._client_pid is None:
            return False
        pid = owner_pid(peer, self.listen_port)
        if pid is None:
            log.info("tunnel: the OS does not say who connected; serving the first connection")
            return True
        allowed = is_in_tree(pid, self._client_pid)
        if not allowed:
            log.warning("tunnel: refused a connection from process %d (not the RDP client)", pid)
        return allowed
