"""Every threshold the posture checks use, in one object the signed policy will fill.

Defaults follow the foundation issue: pending security updates fail, antivirus signatures older than
three days fail, no antivirus fails, a missing screen lock or one that waits over 15 minutes warns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from agent.posture.checks.os_supported import lifecycle


@dataclass(frozen=True)
class PostureSettings:
    # os_updates
    max_pending_security_updates: int = 0
    max_days_since_update: int = 40  # monthly Patch Tuesday plus ten days of grace
    # antivirus
    max_av_signature_age_days: int = 3
    max_xprotect_age_days: int = 30  # Apple ships XProtect data weekly, sometimes weeks apart
    # screen_lock
    max_screen_lock_idle_s: int = 900
    # os_supported: end-of-support tables (see lifecycle.py for sources)
    windows_releases: tuple[lifecycle.WindowsRelease, ...] = lifecycle.WINDOWS_RELEASES
    linux_releases: tuple[lifecycle.LinuxRelease, ...] = lifecycle.LINUX_RELEASES
    macos_releases: tuple[lifecycle.MacRelease, ...] = lifecycle.MACOS_RELEASES
    # os_updates: optional minimum patch level, e.g. {26100: 4946} = 26100.4946 or later
    windows_min_ubr: dict[int, int] = field(default_factory=dict)
    macos_min_version: dict[int, str] = field(default_factory=dict)  # {15: "15.6.1"}
    # engine
    probe_timeout_s: float = 12.0
    today_override: date | None = None  # for tests of the lifecycle tables only
