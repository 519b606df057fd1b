"""Runs every check concurrently under one deadline and turns every failure into ``unknown``.

Each check runs on a daemon thread: a probe stuck in a system call cannot hold the report (or the
process exit) hostage. Whatever has not answered by the deadline is reported as timed out.
"""

from __future__ import annotations

import platform
import queue
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from agent.core.errors import ProbeError
from agent.core.messages import msg
from agent.posture import registry
from agent.posture.context import ProbeContext
from agent.posture.model import CheckResult, Finding, HostInfo, Report, Status

CheckFn = Callable[[ProbeContext], Finding]
# Time the engine waits past the probe deadline for runners to report their own timeout.
_GRACE_S = 0.5


def run_one(check_id: str, fn: CheckFn, ctx: ProbeContext) -> CheckResult:
    start = time.monotonic()
    try:
        finding = fn(ctx)
    except ProbeError as exc:
        finding = Finding(Status.UNKNOWN, exc.message, {"error": exc.detail},
                          f"{check_id}.unknown")
    except Exception as exc:  # a crashing probe must never look like a pass
        finding = Finding(Status.UNKNOWN, msg("probe.crashed", error=type(exc).__name__),
                          {"error": f"{type(exc).__name__}: {exc}"[:500]}, f"{check_id}.unknown")
    return CheckResult(check_id, finding.status, finding.summary, finding.evidence,
                       finding.remediation, int((time.monotonic() - start) * 1000))


def run_checks(ctx: ProbeContext, checks: Sequence[tuple[str, CheckFn]] | None = None,
               timeout: float | None = None) -> tuple[CheckResult, ...]:
    """Each check gets its own budget (``settings.check_timeout_s``: the policy may give one
    check longer, and a Windows check waits for the snapshot's own budget); ``timeout`` forces
    one budget for all. An answer that arrives after its check's budget counts as timed out."""
    checks = list(registry.CHECKS if checks is None else checks)
    budgets = {cid: (ctx.settings.check_timeout_s(cid) if timeout is None else timeout)
               for cid, _ in checks}
    results: queue.Queue[tuple[CheckResult, float]] = queue.Queue()
    start = time.monotonic()
    for check_id, fn in checks:
        t = threading.Thread(
            target=lambda c=check_id, f=fn: results.put((run_one(c, f, ctx), time.monotonic())),
            name=f"probe-{check_id}", daemon=True)
        t.start()
    done: dict[str, CheckResult] = {}
    deadline = start + max(budgets.values(), default=0.0) + _GRACE_S
    while len(done) < len(checks):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            r, arrived = results.get(timeout=remaining)
        except queue.Empty:
            break
        if arrived <= start + budgets[r.id] + _GRACE_S:
            done[r.id] = r
        else:
            done[r.id] = _timed_out(r.id, budgets[r.id])
    return tuple(done.get(cid) or _timed_out(cid, budgets[cid]) for cid, _ in checks)


def _timed_out(check_id: str, seconds: float) -> CheckResult:
    return CheckResult(check_id, Status.UNKNOWN, msg("probe.timeout", what=check_id,
                                                     seconds=seconds),
                       {"error": f"no answer within {seconds:.1f} s"}, f"{check_id}.unknown",
                       int((seconds + _GRACE_S) * 1000))


def host_info(ctx: ProbeContext) -> HostInfo:
    return HostInfo(os=ctx.os, os_version=platform.platform(terse=True),
                    hostname=socket.gethostname(), arch=platform.machine())


def run_posture(ctx: ProbeContext, checks: Sequence[tuple[str, CheckFn]] | None = None) -> Report:
    generated = ctx.now.astimezone(UTC).replace(microsecond=0)
    results = run_checks(ctx, checks)
    return Report(generated_at=generated.isoformat().replace("+00:00", "Z"),
                  host=host_info(ctx), checks=results)


def utc_now() -> datetime:
    return datetime.now(UTC)
