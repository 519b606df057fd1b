"""A wall-clock deadline for a whole network exchange, including servers that trickle bytes.

Socket timeouts bound each ``recv``; a slow-loris server that sends one byte every few seconds
never trips them, during the TLS handshake, the headers or the body. A :class:`Deadline` is a
timer that, when it fires, shuts down (``shutdown(SHUT_RDWR)``) every socket registered with it:
the blocked ``recv`` in the worker returns at once and the caller reports a timeout. Sockets are
registered when they are made (before the TLS handshake), by descriptor and addresses, so the
TLS wrapper that takes the descriptor over is covered as well.

- requests: :func:`guard_session` swaps the connection classes of the session's adapters (any
  HTTPAdapter, including the keystore's mutual-TLS one) for ones that register their sockets.
- urllib3: :func:`guard_pool_manager` does the same for a bare ``PoolManager`` (the update
  fetcher, agent/update/fetcher.py).
- http.client: :func:`guard_connection` (the connection's socket factory registers the socket).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # requests/urllib3 load only where an HTTPS call happens (start-up time)
    import requests
    from urllib3.poolmanager import PoolManager


class DeadlineExceeded(TimeoutError):
    """The whole exchange took longer than its deadline."""


class Deadline:
    """Use as a context manager around the exchange; ``fired`` tells whether it cut it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.fired = False
        self._lock = threading.Lock()
        self._socks: list[tuple[int, Any, Any]] = []
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._timer.cancel()
        with self._lock:
            self._socks.clear()

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    def check(self) -> None:
        if self.fired or time.monotonic() > self.expires:
            raise DeadlineExceeded(f"no answer within {self.seconds:g} s")

    def watch(self, sock: socket.socket | None) -> None:
        """Register a connected socket (its descriptor, local and peer addresses)."""
        if sock is None:
            return
        try:
            entry = (sock.fileno(), sock.getsockname(), sock.getpeername())
        except OSError:
            return
        with self._lock:
            if self.fired:
                self._cut(entry)
            else:
                self._socks.append(entry)

    @staticmethod
    def _cut(entry: tuple[int, Any, Any]) -> None:
        fd, local, peer = entry
        try:
            dup = socket.socket(fileno=socket.dup(fd))  # family and type read from the fd
        except OSError:
            return
        with contextlib.closing(dup), contextlib.suppress(OSError):
            # The descriptor may have been reused since: cut only the connection we saw.
            if dup.getsockname() == local and dup.getpeername() == peer:
                dup.shutdown(socket.SHUT_RDWR)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            entries = list(self._socks)
        for entry in entries:
            self._cut(entry)


def _registering(base: type[Any], deadline: Deadline) -> type[Any]:
    class Registering(base):  # type: ignore[misc]
        def _new_conn(self) -> socket.socket:
            deadline.check()
            sock: socket.socket = super()._new_conn()
            deadline.watch(sock)
            return sock

    Registering.__name__ = f"Deadline{base.__name__}"
    return Registering


def guard_pool_manager(manager: PoolManager, deadline: Deadline) -> PoolManager:
    """Make every connection a urllib3 ``manager`` opens from now on register with ``deadline``."""
    from urllib3.connection import HTTPConnection, HTTPSConnection  # noqa: PLC0415
    from urllib3.connectionpool import HTTPSConnectionPool  # noqa: PLC0415

    classes = {}
    for scheme, pool in manager.pool_classes_by_scheme.items():
        conn_base = HTTPSConnection if issubclass(pool, HTTPSConnectionPool) else HTTPConnection
        conn_cls = _registering(getattr(pool, "ConnectionCls", conn_base), deadline)
        classes[scheme] = type(f"Deadline{pool.__name__}", (pool,), {"ConnectionCls": conn_cls})
    manager.pool_classes_by_scheme = classes
    manager.clear()  # pools made before this point would keep their old classes
    return manager


def guard_session(session: requests.Session, deadline: Deadline) -> requests.Session:
    """Make every connection ``session`` opens from now on register with ``deadline``."""
    for adapter in session.adapters.values():
        manager = getattr(adapter, "poolmanager", None)
        if manager is not None:
            guard_pool_manager(manager, deadline)
    return session


def guard_connection(conn: http.client.HTTPConnection, deadline: Deadline) -> None:
    """Make ``conn`` register the socket it opens (before its TLS handshake) with ``deadline``."""
    def create(address: tuple[str, int], *args: Any) -> socket.socket:
        deadline.check()
        sock = socket.create_connection(address, *args)
        deadline.watch(sock)
        return sock

    conn._create_connection = create  # type: ignore[attr-defined]


@contextlib.contextmanager
def reading(deadline: Deadline) -> Iterator[None]:
    """Turn the errors a cut socket causes into DeadlineExceeded once the deadline fired."""
    try:
        yield
    # requests' RequestException is an OSError; http.client's errors are HTTPException.
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if deadline.fired:
            raise DeadlineExceeded(f"no answer within {deadline.seconds:g} s") from exc
        raise
    if deadline.fired:
        raise DeadlineExceeded(f"no answer within {deadline.seconds:g} s")
