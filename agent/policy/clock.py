"""clock_skew: does this PC's clock agree with the gateway's?

Reference: the ``Date`` header (RFC 9110 §6.6.1, one-second resolution) of an HTTPS response from
the URL the policy names, over TLS verified against the CA the policy names. Certificates and
Kerberos-style tickets fail with a wrong clock, and logs become useless to the help desk.
Unreachable, no Date header, or no reference in the policy -> unknown.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from agent.core import netdeadline
from agent.core.errors import ParseError, ProbeTimeout, SourceMissing
from agent.core.messages import msg
from agent.policy.model import ClockSkewRule
from agent.posture.context import ProbeContext
from agent.posture.model import Finding, Status

SOURCES: tuple[str, ...] = ()
# (url, ca_pem, timeout) -> (server's Date, local UTC time at the middle of the request)
ClockProbe = Callable[[str, str, float], tuple[datetime, datetime]]


def parse_http_date(value: str | None) -> datetime:
    if not value:
        raise ParseError("gateway Date header", "missing")
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError) as exc:
        raise ParseError("gateway Date header", value[:80]) from exc
    if parsed.tzinfo is None:  # RFC 9110 dates are GMT
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def https_date(url: str, ca_pem: str, timeout: float) -> tuple[datetime, datetime]:
    """HEAD the reference URL with only the policy's CA trusted."""
    import requests  # noqa: PLC0415 - only when the policy asks; the tray starts without it

    with tempfile.TemporaryDirectory(prefix="byod-ca-") as tmp:
        ca_file = os.path.join(tmp, "ca.pem")
        with open(ca_file, "w", encoding="ascii") as fh:
            fh.write(ca_pem)
        before = datetime.now(UTC)
        try:
            with requests.Session() as s, netdeadline.Deadline(2 * timeout) as guard:
                s.trust_env = False  # no .netrc, no environment CA bundle
                netdeadline.guard_session(s, guard)  # wall clock: trickled headers are cut
                with netdeadline.reading(guard):
                    r = s.head(url, verify=ca_file, timeout=(timeout, timeout),
                               allow_redirects=False)
        except netdeadline.DeadlineExceeded as exc:
            raise ProbeTimeout("gateway clock", 2 * timeout) from exc
        except requests.Timeout as exc:
            raise ProbeTimeout("gateway clock", timeout) from exc
        except requests.RequestException as exc:
            raise SourceMissing("gateway clock", f"{type(exc).__name__}: {exc}"[:200]) from exc
        after = datetime.now(UTC)
    return parse_http_date(r.headers.get("Date")), before + (after - before) / 2


def check_clock(ctx: ProbeContext, rule: ClockSkewRule, probe: ClockProbe) -> Finding:
    if not rule.reference_url or not rule.reference_ca_pem:
        raise SourceMissing("clock reference", "the policy names no reference URL")
    server, local = probe(rule.reference_url, rule.reference_ca_pem,
                          min(5.0, ctx.settings.probe_timeout_s))
    skew = (local - server).total_seconds()
    evidence = {"reference": rule.reference_url, "server_date": server.isoformat(),
                "local_time": local.replace(microsecond=0).isoformat(),
                "skew_seconds": round(skew, 1), "max_skew_seconds": rule.max_skew_s}
    # The Date header is truncated to the second: allow that second before calling it skew.
    if abs(skew) > rule.max_skew_s + 1:
        return Finding(Status.FAIL, msg("clock_skew.off", seconds=round(abs(skew)),
                                        limit=rule.max_skew_s), evidence, "clock_skew.fix")
    return Finding(Status.PASS, msg("clock_skew.ok", seconds=round(abs(skew))), evidence)
