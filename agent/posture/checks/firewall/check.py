"""firewall: does something drop unsolicited inbound connections?

Windows: the snapshot's ``firewall`` section (HNetCfg.FwPolicy2 per profile, the current profile
bitmask, third-party SecurityCenter2 FirewallProduct entries). macOS: ``socketfilterfw
--getglobalstate``, keyed on the numeric ``(State = N)`` only. Linux: three independent sources,
any of which may be unreadable for an ordinary user: the nftables ruleset (needs CAP_NET_ADMIN),
ufw (``ufw status`` needs root; ``/etc/ufw/ufw.conf`` is world-readable) and firewalld
(``firewall-cmd --state``). One active source passes; readable sources that all say "off" fail;
nothing readable is unknown.
"""

from __future__ import annotations

from agent.posture.checks.firewall import linux, macos, windows
from agent.posture.context import ProbeContext
from agent.posture.dispatch import by_os
from agent.posture.model import Finding

CHECK_ID = "firewall"
# Files read directly (the fault matrix plants garbage in each).
SOURCES: tuple[str, ...] = linux.SOURCES


def check(ctx: ProbeContext) -> Finding:
    return by_os(ctx, CHECK_ID, windows=windows.check_windows, macos=macos.check_macos,
                 linux=linux.check_linux)
