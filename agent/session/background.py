"""Run a Tunnel on its own thread with its own asyncio loop, for synchronous callers.

The session controller (and the tray, through it) is synchronous: it waits on the RDP client and
re-checks posture. The tunnel's loop lives on a daemon thread; every call crosses with
``run_coroutine_threadsafe`` so nothing touches the loop from outside it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from agent.core import logsetup
from agent.session.tunnel import Tunnel, TunnelStats, new_event_loop

T = TypeVar("T")


class BackgroundTunnel:
    def __init__(self, tunnel: Tunnel, *, correlation_id: str | None = None) -> None:
        self.tunnel = tunnel
        self._loop = new_event_loop()  # uvloop where installed
        self._thread = threading.Thread(target=self._main, args=(correlation_id,),
                                        name="session-tunnel", daemon=True)
        self._thread.start()

    def _main(self, correlation_id: str | None) -> None:
        logsetup.set_correlation_id(correlation_id)  # the tunnel's log lines carry the ID too
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self, timeout: float = 10.0) -> int:
        return self.call(self.tunnel.start(), timeout)

    @property
    def stats(self) -> TunnelStats:
        return self.tunnel.stats

    def close(self, timeout: float = 10.0) -> None:
        if self._loop.is_closed():
            return
        try:
            self.call(self.tunnel.close(), timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._loop.close()
