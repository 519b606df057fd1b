"""Every threshold the posture checks use, in one object the signed policy fills.

Defaults follow the foundation issue: pending security updates fail, antivirus signatures older than
three days fail, no antivirus fails, a missing screen lock or one that waits over 15 minutes warns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from agent.posture.checks.os_supported import lifecycle
from agent.posture.checks.os_updates import windows_patches


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
    windows_long_term: tuple[lifecycle.LongTermRelease, ...] = lifecycle.WINDOWS_LONG_TERM
    linux_releases: tuple[lifecycle.LinuxRelease, ...] = lifecycle.LINUX_RELEASES
    macos_releases: tuple[lifecycle.MacRelease, ...] = lifecycle.MACOS_RELEASES
    # os_updates: optional minimum patch level, e.g. {26100: 4946} = 26100.4946 or later
    windows_min_ubr: dict[int, int] = field(default_factory=dict)
    macos_min_version: dict[int, str] = field(default_factory=dict)  # {15: "15.6.1"}
    # os_updates on Windows: build.UBR per Patch Tuesday (windows_patches.py; the policy's
    # [[checks.os_updates.windows_patches]] rows replace its months and add new ones), the
    # days a PC has after a release before it must have it, and the age after which the table
    # itself is too old to judge (two Patch Tuesdays missing).
    windows_patches: tuple[windows_patches.WindowsPatch, ...] = windows_patches.WINDOWS_PATCHES
    windows_patch_grace_days: int = 10
    windows_patch_table_max_age_days: int = 62
    # engine
    probe_timeout_s: float = 12.0
    # The one PowerShell call for all Windows checks; a cold start on a slow home PC takes
    # seconds before the first line runs. None: the same as probe_timeout_s.
    snapshot_timeout_s: float | None = None
    # Per-check overrides of probe_timeout_s, e.g. {"antivirus": 20.0}: the policy's `timeout_s`
    # of each [checks.<id>] section; probe_timeout_s and snapshot_timeout_s are its [posture] keys.
    check_timeouts_s: dict[str, float] = field(default_factory=dict)
    today_override: date | None = None  # for tests of the lifecycle tables only

    def check_timeout_s(self, check_id: str) -> float:
        """How long the engine waits for one check; a Windows check also waits for the
        snapshot it reads, so the snapshot's own budget counts for it."""
        own = self.check_timeouts_s.get(check_id, self.probe_timeout_s)
        return max(own, self.snapshot_timeout_s or 0.0)

    def longest_budget_s(self) -> float:
        return max([self.probe_timeout_s, self.snapshot_timeout_s or 0.0,
                    *self.check_timeouts_s.values()])
