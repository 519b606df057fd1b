"""A full posture run (all checks, concurrently) against the slowest check run alone.

Each run gets a fresh context, as ``byod-agent check`` does (the runner's deadline starts with it).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from agent.posture import registry
from agent.posture.context import default_context
from agent.posture.engine import CheckFn, run_checks
from bench.common import Options, Result, median

KEYS = ("posture_vs_slowest_probe",)


def _timed(checks: Sequence[tuple[str, CheckFn]]) -> float:
    ctx = default_context()
    start = time.perf_counter()
    run_checks(ctx, checks)
    return time.perf_counter() - start


def run(opts: Options) -> Result:
    repeats = opts.pick(opts.repeats, 1)
    checks = list(registry.CHECKS)
    if not opts.quick:
        _timed(checks)  # warm the page cache and imports, as a tray that has run once would be
    singles: dict[str, float] = {}
    for check_id, fn in checks:
        singles[check_id] = median([_timed([(check_id, fn)]) for _ in range(repeats)])
    full = median([_timed(checks) for _ in range(repeats)])
    slowest_id = max(singles, key=lambda k: singles[k])
    slowest = singles[slowest_id]
    r = round(full / slowest, 3) if slowest > 0 else None
    rows = [f"full run {full * 1000:.0f} ms vs slowest probe {slowest_id} "
            f"{slowest * 1000:.0f} ms (median of {repeats}) -> {r}",
            "  alone: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in
                                    sorted(singles.items(), key=lambda kv: -kv[1]))]
    return Result("posture", {"posture_vs_slowest_probe": r}, rows)
