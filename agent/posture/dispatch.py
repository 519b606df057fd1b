"""Pick the probe for the running OS; an OS without one is ``unknown``, never a guess."""

from __future__ import annotations

from collections.abc import Callable

from agent.core.errors import Unsupported
from agent.posture.context import ProbeContext
from agent.posture.model import Finding

Probe = Callable[[ProbeContext], Finding]


def by_os(ctx: ProbeContext, check_id: str, *, windows: Probe, macos: Probe,
          linux: Probe) -> Finding:
    probe = {"windows": windows, "macos": macos, "linux": linux}.get(ctx.os)
    if probe is None:
        raise Unsupported(f"{check_id} on {ctx.os}")
    return probe(ctx)


def version_tuple(text: str) -> tuple[int, ...]:
    """'15.1.1' -> (15, 1, 1); raises ValueError on anything that is not dotted digits."""
    parts = text.strip().split(".")
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a dotted version: {text!r}")
    return tuple(int(p) for p in parts)
