"""The HTTPS fetcher TUF downloads through: an explicit TLS context, bounded in time and size.

TUF protects the bytes whatever the transport; HTTPS still matters (privacy of what is fetched, a
freeze needs more than a network position). The context is the caller's (the system store, or a
pinned CA for a city server); certificate and host name checks are never switched off. TUF's own
length limit caps the bytes. No redirects, no retries: the repository is a static directory.

Every download (metadata or target) has a wall-clock deadline of ``deadline_s`` from the first
connection attempt to the last byte, enforced *inside* the read by agent/core/netdeadline.py (the
helper the policy fetch uses): when it passes, the socket is shut down, the blocked ``recv``
returns and the download ends with ``SlowRetrievalError``. The socket timeout alone bounds only
the gap between two bytes, so a server trickling one byte just under it would otherwise hold a
download for hours. Each download gets its own connection pool, so every socket it reads from
was registered with its deadline (a static repository is a handful of files per check).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import urllib3
from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface

from agent import __version__
from agent.core import netdeadline


class PinnedFetcher(FetcherInterface):
    def __init__(self, context: ssl.SSLContext, *, deadline_s: float = 120.0,
                 socket_timeout_s: float = 15.0, chunk_size: int = 256 * 1024) -> None:
        if context.verify_mode is not ssl.CERT_REQUIRED or not context.check_hostname:
            raise ValueError("the update fetcher needs a verifying TLS context")
        self.deadline_s = deadline_s
        self.chunk_size = chunk_size
        self._context = context
        self._timeout = urllib3.Timeout(connect=socket_timeout_s, read=socket_timeout_s)

    def _pool(self, deadline: netdeadline.Deadline) -> urllib3.PoolManager:
        pool = urllib3.PoolManager(ssl_context=self._context, retries=False,
                                   headers={"User-Agent": f"byod-agent/{__version__}"})
        return netdeadline.guard_pool_manager(pool, deadline)

    def _slow(self) -> exceptions.SlowRetrievalError:
        return exceptions.SlowRetrievalError(f"download not finished within {self.deadline_s:g} s")

    def _fetch(self, url: str) -> Iterator[bytes]:
        if not url.startswith("https://"):
            raise exceptions.DownloadError(f"refusing a non-https URL: {url[:80]}")
        deadline = netdeadline.Deadline(self.deadline_s).__enter__()
        pool = self._pool(deadline)
        try:
            with netdeadline.reading(deadline):
                response = pool.request("GET", url, preload_content=False, redirect=False,
                                        timeout=self._timeout)
        except (netdeadline.DeadlineExceeded, urllib3.exceptions.ReadTimeoutError) as exc:
            self._close(deadline, pool)
            raise self._slow() from exc
        # TLS, refused (NewConnectionError is a ConnectTimeoutError in urllib3 2), reset, a
        # connect timeout: no answer at all, "unreachable"; a read timeout is "too slow".
        except urllib3.exceptions.HTTPError as exc:
            self._close(deadline, pool)
            if deadline.fired:  # the handshake or the headers were trickled past the deadline
                raise self._slow() from exc
            raise exceptions.DownloadError(f"{type(exc).__name__}: {exc}"[:300]) from exc
        except BaseException:
            self._close(deadline, pool)
            raise
        if response.status != 200:
            response.release_conn()
            self._close(deadline, pool)
            raise exceptions.DownloadHTTPError(f"HTTP {response.status}", response.status)
        return self._chunks(response, deadline, pool)

    @staticmethod
    def _close(deadline: netdeadline.Deadline, pool: urllib3.PoolManager) -> None:
        deadline.__exit__(None, None, None)
        pool.clear()

    def _chunks(self, response: urllib3.response.BaseHTTPResponse,
                deadline: netdeadline.Deadline, pool: urllib3.PoolManager) -> Iterator[bytes]:
        try:
            with netdeadline.reading(deadline):
                for chunk in response.stream(self.chunk_size):
                    deadline.check()
                    yield chunk
        except (netdeadline.DeadlineExceeded, urllib3.exceptions.ReadTimeoutError) as exc:
            raise self._slow() from exc
        except urllib3.exceptions.HTTPError as exc:  # a cut socket shows as a ProtocolError
            if deadline.fired:
                raise self._slow() from exc
            raise exceptions.DownloadError(f"{type(exc).__name__}"[:300]) from exc
        finally:
            response.release_conn()
            self._close(deadline, pool)
