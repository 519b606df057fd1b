"""screen_lock: does the PC lock itself, with a password, soon after the user walks away?

A missing lock, or one that waits longer than ``settings.max_screen_lock_idle_s``, warns.
Windows: the snapshot's ``screen_lock`` section (screensaver values, policy overriding user, and the
machine InactivityTimeoutSecs). macOS: ``sysadminctl -screenLock status`` (it writes to stderr) and
the screensaver ``idleTime``. Linux: only inside a graphical session; GNOME-family desktops through
``gsettings``, KDE Plasma through ``kscreenlockerrc``; any other desktop is unknown by name.
"""

from __future__ import annotations

from agent.posture.checks.screen_lock import linux, macos, windows
from agent.posture.context import ProbeContext
from agent.posture.dispatch import by_os
from agent.posture.model import Finding

CHECK_ID = "screen_lock"
# Only per-user files are read (under the home directory), so no fixed system path.
SOURCES: tuple[str, ...] = ()


def check(ctx: ProbeContext) -> Finding:
    return by_os(ctx, CHECK_ID, windows=windows.check_windows, macos=macos.check_macos,
                 linux=linux.check_linux)
