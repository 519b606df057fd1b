"""os_updates: is this PC getting its security fixes?

One probe per OS, each in its own module:
- Windows (updates_windows): Windows Update service not disabled, automatic updates not turned
  off by policy, build+UBR against ``windows_min_ubr``, age of the last Windows patch against
  ``max_days_since_update``, pending restart; all from the batched snapshot.
- macOS (updates_macos): Software Update's plist (last successful check, pending recommended
  updates, automatic security responses) and the OS version against ``macos_min_version``.
- Linux (updates_linux): pending security updates from apt (simulated dist-upgrade) or dnf
  (check-update --security) against ``max_pending_security_updates``, age of the package lists,
  pending restart.
Any source that cannot be read or parsed makes the check ``unknown``, never ``pass``.
"""

from __future__ import annotations

from agent.posture.checks.os_updates import linux as updates_linux
from agent.posture.checks.os_updates import macos as updates_macos
from agent.posture.checks.os_updates.windows import check_windows
from agent.posture.context import ProbeContext
from agent.posture.dispatch import by_os
from agent.posture.model import Finding

CHECK_ID = "os_updates"
# Files read directly (the fault matrix plants garbage in each). Also globbed, for their mtimes
# only: /var/lib/apt/lists/*InRelease|*_Release and /var/cache/{dnf,libdnf5}/*/repodata/repomd.xml.
SOURCES: tuple[str, ...] = updates_linux.SOURCES + updates_macos.SOURCES


def check(ctx: ProbeContext) -> Finding:
    return by_os(ctx, CHECK_ID, windows=check_windows, macos=updates_macos.check_macos,
                 linux=updates_linux.check_linux)
