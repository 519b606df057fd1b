"""The checks, in the order staff see them."""

from __future__ import annotations

from collections.abc import Callable

from agent.posture import (
    antivirus,
    disk_encryption,
    firewall,
    os_supported,
    os_updates,
    screen_lock,
)
from agent.posture.context import ProbeContext
from agent.posture.model import Finding

CHECKS: tuple[tuple[str, Callable[[ProbeContext], Finding]], ...] = (
    ("os_supported", os_supported.check),
    ("os_updates", os_updates.check),
    ("disk_encryption", disk_encryption.check),
    ("antivirus", antivirus.check),
    ("firewall", firewall.check),
    ("screen_lock", screen_lock.check),
)
