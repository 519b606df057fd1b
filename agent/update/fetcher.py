"""The HTTPS fetcher TUF downloads through: an explicit TLS context, bounded in time and size.

TUF protects the bytes whatever the transport; HTTPS still matters (privacy of what is fetched, a
freeze needs more than a network position). The context is the caller's (the system store, or a
pinned CA for a city server); certificate and host name checks are never switched off. A download
ends at ``deadline_s`` of wall time however slowly the server trickles, and TUF's own length limit
caps the bytes. No redirects, no retries: the repository is a static directory.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator

import urllib3
from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface

from agent import __version__


class PinnedFetcher(FetcherInterface):
    def __init__(self, context: ssl.SSLContext, *, deadline_s: float = 120.0,
                 socket_timeout_s: float = 15.0, chunk_size: int = 256 * 1024) -> None:
        if context.verify_mode is not ssl.CERT_REQUIRED or not context.check_hostname:
            raise ValueError("the update fetcher needs a verifying TLS context")
        self.deadline_s = deadline_s
        self.chunk_size = chunk_size
        self._timeout = urllib3.Timeout(connect=socket_timeout_s, read=socket_timeout_s)
        self._pool = urllib3.PoolManager(ssl_context=context, retries=False,
                                         headers={"User-Agent": f"byod-agent/{__version__}"})

    def _fetch(self, url: str) -> Iterator[bytes]:
        if not url.startswith("https://"):
            raise exceptions.DownloadError(f"refusing a non-https URL: {url[:80]}")
        started = time.monotonic()
        try:
            response = self._pool.request("GET", url, preload_content=False, redirect=False,
                                          timeout=self._timeout)
        except urllib3.exceptions.TimeoutError as exc:
            raise exceptions.SlowRetrievalError from exc
        except urllib3.exceptions.HTTPError as exc:  # TLS, refused, reset: no answer at all
            raise exceptions.DownloadError(f"{type(exc).__name__}: {exc}"[:300]) from exc
        if response.status != 200:
            response.release_conn()
            raise exceptions.DownloadHTTPError(f"HTTP {response.status}", response.status)
        return self._chunks(response, started)

    def _chunks(self, response: urllib3.response.BaseHTTPResponse,
                started: float) -> Iterator[bytes]:
        try:
            for chunk in response.stream(self.chunk_size):
                if time.monotonic() - started > self.deadline_s:
                    raise exceptions.SlowRetrievalError
                yield chunk
        except urllib3.exceptions.TimeoutError as exc:
            raise exceptions.SlowRetrievalError from exc
        except urllib3.exceptions.HTTPError as exc:
            raise exceptions.DownloadError(f"{type(exc).__name__}"[:300]) from exc
        finally:
            response.release_conn()
