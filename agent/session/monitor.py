"""Continuous compliance during a session: a pure state machine driven by decisions and time.

A blocking check that fails starts the grace period; the session ends when it runs out unless a
later decision allows again. Kept free of I/O so every transition is tested with plain numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class Transition(StrEnum):
    NONCOMPLIANT = "noncompliant"  # first failing decision: warn, the countdown starts
    RECOVERED = "recovered"  # allowed again before the deadline
    EXPIRED = "expired"  # the grace period ran out: end the session


@dataclass
class ComplianceWatch:
    grace_seconds: float
    deadline: float | None = None  # monotonic time the session ends at, while non-compliant

    def observe(self, allowed: bool, now: float) -> Transition | None:
        if allowed:
            if self.deadline is None:
                return None
            self.deadline = None
            return Transition.RECOVERED
        if self.deadline is None:
            self.deadline = now + self.grace_seconds
            return Transition.EXPIRED if self.grace_seconds <= 0 else Transition.NONCOMPLIANT
        return self.tick(now)

    def tick(self, now: float) -> Transition | None:
        if self.deadline is not None and now >= self.deadline:
            return Transition.EXPIRED
        return None

    def remaining(self, now: float) -> int | None:
        if self.deadline is None:
            return None
        return max(0, math.ceil(self.deadline - now))


def clock_jumped(wall_delta: float, mono_delta: float, *, tolerance: float = 30.0) -> bool:
    """The wall clock moved much more than the monotonic one: the PC slept (or the clock was
    set). Either way posture may have changed while nobody watched, so check at once."""
    return abs(wall_delta - mono_delta) > tolerance
