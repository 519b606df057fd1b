"""Policy updates over HTTPS: explicit CA, timeouts, a size cap, conditional requests.

The update URL and its CA come from the policy in force (so they are signed too); the detached
signature is fetched from ``<url>.sig``. A downloaded policy is verified exactly like an installed
one before it is kept as the last good copy; a refused or unreachable one changes nothing, and the
cached policy stays in force until it expires.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import requests

from agent.core import netdeadline
from agent.core.fsutil import atomic_write
from agent.core.messages import Message, msg
from agent.policy import schedule
from agent.policy.errors import FetchFailed, PolicyRefused
from agent.policy.loader import loaded_policy, remember_refusal, verify_policy
from agent.policy.model import LoadedPolicy, UpdateSource
from agent.policy.schedule import UpdateStatus
from agent.policy.schema import MAX_POLICY_BYTES
from agent.policy.signing import MAX_SIG_BYTES, TrustAnchor, verify
from agent.policy.state import PolicyState, Refusal

META_FILE = "policy-update.json"
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 10.0
TOTAL_DEADLINE_S = 30.0  # a server trickling one byte at a time still ends here
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchResult:
    changed: bool  # False: 304 Not Modified, the cached copy stays
    loaded: LoadedPolicy | None


@dataclass(frozen=True)
class _Got:
    status: int  # 200 or 304
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None


def _get_capped(session: requests.Session, url: str, ca_file: str, limit: int, *,
                headers: dict[str, str], deadline: float,
                timeouts: tuple[float, float]) -> _Got:
    """GET with the caps; the body is read in chunks so an oversized one is never held whole."""
    try:
        r = session.get(url, headers=headers, verify=ca_file, stream=True,
                        timeout=timeouts, allow_redirects=False)
    except requests.exceptions.SSLError as exc:
        raise FetchFailed(msg("policy.fetch.tls", url=url), f"TLS: {exc}"[:300]) from exc
    except requests.Timeout as exc:
        raise FetchFailed(msg("policy.fetch.timeout", url=url), f"timeout: {exc}"[:300]) from exc
    except requests.RequestException as exc:
        raise FetchFailed(msg("policy.fetch.unreachable", url=url),
                          f"{type(exc).__name__}: {exc}"[:300]) from exc
    with r:
        if r.status_code == 304:
            return _Got(304)
        if r.status_code != 200:
            raise FetchFailed(msg("policy.fetch.http_status", url=url, status=r.status_code),
                              f"HTTP {r.status_code}")
        declared = r.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(int(declared), limit)
        body = bytearray()
        try:
            for chunk in r.iter_content(64 * 1024):
                body += chunk
                if len(body) > limit:
                    raise _too_large(len(body), limit)
                if time.monotonic() > deadline:
                    raise FetchFailed(msg("policy.fetch.timeout", url=url), "total deadline")
        except requests.RequestException as exc:  # read timeout or reset in the middle
            raise FetchFailed(msg("policy.fetch.timeout", url=url),
                              f"{type(exc).__name__}: {exc}"[:300]) from exc
        return _Got(200, bytes(body), r.headers.get("ETag"), r.headers.get("Last-Modified"))


def _too_large(size: int, limit: int) -> PolicyRefused:
    return PolicyRefused(msg("policy.refused.too_large", size=size, limit=limit),
                         f"{size} bytes > {limit}")


def read_status(state: PolicyState) -> UpdateStatus:
    """The update record; a missing or damaged one is an empty record (the next try rebuilds it)."""
    try:
        raw = (state.directory / META_FILE).read_text(encoding="utf-8")
        return UpdateStatus.from_json(json.loads(raw))
    except (OSError, ValueError):
        return UpdateStatus()


def write_status(state: PolicyState, status: UpdateStatus) -> None:
    atomic_write(state.directory / META_FILE, schedule.dumps(status))


def fetch_update(update: UpdateSource, state: PolicyState, anchors: Sequence[TrustAnchor], *,
                 now: datetime,
                 session_factory: Callable[[], requests.Session] = requests.Session,
                 max_bytes: int = MAX_POLICY_BYTES,
                 timeouts: tuple[float, float] = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
                 total_deadline_s: float = TOTAL_DEADLINE_S, conditional: bool = True,
                 network: str = "") -> FetchResult:
    """Download, verify and keep a newer policy. FetchFailed: offline; PolicyRefused: bad one.

    Every attempt is recorded (agent.policy.schedule.UpdateStatus) for the scheduler, the
    offline grace timeline and ``policy show``. ``conditional=False`` (no policy in force: a
    "304 Not Modified" could not help) asks for the whole file.
    """
    status = read_status(state).with_jitter()
    headers: dict[str, str] = {}
    if conditional and status.url == update.url:
        if status.etag:
            headers["If-None-Match"] = status.etag
        if status.last_modified:
            headers["If-Modified-Since"] = status.last_modified

    def record(result: str, reason: Message | None = None, got: _Got | None = None) -> None:
        new = schedule.after_attempt(status, now, result, reason=reason, network=network,
                                     url=update.url, etag=got.etag if got else None,
                                     last_modified=got.last_modified if got else None)
        try:
            write_status(state, new)
        except OSError as exc:  # a read-only profile must not hide the result
            log.warning("cannot record the policy update: %s", exc)

    deadline = time.monotonic() + total_deadline_s
    try:
        with tempfile.TemporaryDirectory(prefix="byod-ca-") as tmp:
            ca_file = os.path.join(tmp, "ca.pem")
            with open(ca_file, "w", encoding="ascii") as fh:
                fh.write(update.ca_pem)
            with session_factory() as session, netdeadline.Deadline(total_deadline_s) as guard:
                session.trust_env = False  # only the policy's CA; no .netrc, no env CA bundle
                # The deadline is wall-clock: a server trickling one byte at a time (headers,
                # TLS handshake or body) is cut when it passes, not only between chunks.
                netdeadline.guard_session(session, guard)
                try:
                    got = _get_capped(session, update.url, ca_file, max_bytes, headers=headers,
                                      deadline=deadline, timeouts=timeouts)
                    if got.status == 304 and not guard.fired:
                        record("not_modified")
                        return FetchResult(False, None)
                    sig = _get_capped(session, update.url + ".sig", ca_file, MAX_SIG_BYTES,
                                      headers={}, deadline=deadline, timeouts=timeouts)
                except (FetchFailed, PolicyRefused):
                    if guard.fired:
                        raise FetchFailed(msg("policy.fetch.timeout", url=update.url),
                                          f"total deadline {total_deadline_s:g} s") from None
                    raise
                if guard.fired:  # cut in the middle: a short body is not a bad policy
                    raise FetchFailed(msg("policy.fetch.timeout", url=update.url),
                                      f"total deadline {total_deadline_s:g} s")
                if sig.status != 200:
                    raise FetchFailed(msg("policy.fetch.http_status", url=update.url + ".sig",
                                          status=sig.status), "unexpected 304 for the signature")
        policy, anchor = verify_policy(got.body, sig.body, anchors, now=now,
                                       highest_serial=lambda pid: state.highest_serial(
                                           pid, verify(got.body, sig.body, anchors).key_id))
    except FetchFailed as exc:
        record("offline", exc.message)
        raise
    except PolicyRefused as exc:
        _refused(state, update.url, now, exc)
        record("refused", exc.message)
        raise
    state.record_accepted(policy.id, policy.serial, anchor.key_id)
    state.store_last_good(got.body, sig.body, anchor.key_id, policy.id)
    record("updated", got=got)
    return FetchResult(True, loaded_policy(policy, anchor, got.body, "update", update.url))


def _refused(state: PolicyState, url: str, now: datetime, exc: PolicyRefused) -> None:
    at = now.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    remember_refusal(state, Refusal(at, "update", url, exc.message, exc.detail))
