"""The checks, in the order staff see them."""

from __future__ import annotations

from collections.abc import Callable

from agent.posture.checks.antivirus import check as antivirus
from agent.posture.checks.disk_encryption import check as disk_encryption
from agent.posture.checks.firewall import check as firewall
from agent.posture.checks.os_supported import check as os_supported
from agent.posture.checks.os_updates import check as os_updates
from agent.posture.checks.screen_lock import check as screen_lock
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
