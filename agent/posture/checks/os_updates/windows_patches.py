"""The Windows patch level each month's release brings: build.UBR per Patch Tuesday.

A cumulative update raises the UBR (the fourth part of 10.0.BUILD.UBR); the registry value UBR is
what the PC runs, whatever Windows Update's history says. So the check compares the PC's UBR with
the newest release of its build that has been out for longer than the grace period.

Sources (read 2026-12 through the project's search tool; Microsoft's "Windows 11 release
information" / "Windows 10 release information" pages list the same build.UBR and KB per month):
- 26100.4652 KB5062553 2025-07-08: windowsforum.com thread "Windows 11 July 2025 Update KB5062553".
- 26100.4946 KB5063878 2025-08-12 and 26100.6584 KB5065426 2025-09-09: windowsforum.com threads
  on KB5065426 (they name the August rollup too).
- 26100/26200.7171 KB5068861 2025-11-11: kimiyoya.com "KB5068861 November 2025 update guide".
- 26100/26200 KB5072033 2025-12-09: fixguide.blog "December Patch Tuesday KB5072033".
Rows marked ``confirmed=False`` come from the Microsoft release-information tables as the
maintainer remembers them and were not found in a stored page: verify them there before relying
on them (docs/windows-snapshot.md says how IT ships a newer or corrected table in the policy).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class WindowsPatch:
    build: int  # CurrentBuildNumber
    ubr: int  # UBR after installing this month's cumulative update
    released: date  # Patch Tuesday (the "B" release)
    kb: str  # the cumulative update, e.g. "KB5072033"
    confirmed: bool = True  # False: not yet checked against a stored public page


def _p(build: int, ubr: int, day: str, kb: str, confirmed: bool = True) -> WindowsPatch:
    return WindowsPatch(build, ubr, date.fromisoformat(day), kb, confirmed)


WINDOWS_PATCHES: tuple[WindowsPatch, ...] = (
    # Windows 11 24H2 (26100) and 25H2 (26200) share one servicing branch and one UBR per month.
    _p(26100, 4652, "2025-07-08", "KB5062553"),
    _p(26100, 4946, "2025-08-12", "KB5063878"),
    _p(26100, 6584, "2025-09-09", "KB5065426"),
    _p(26100, 6899, "2025-10-14", "KB5066835", confirmed=False),
    _p(26100, 7171, "2025-11-11", "KB5068861"),
    _p(26100, 7462, "2025-12-09", "KB5072033", confirmed=False),
    _p(26200, 6899, "2025-10-14", "KB5066835", confirmed=False),
    _p(26200, 7171, "2025-11-11", "KB5068861"),
    _p(26200, 7462, "2025-12-09", "KB5072033", confirmed=False),
    # Windows 11 23H2 (22631): Enterprise/Education only after 2025-11-11.
    _p(22631, 6060, "2025-10-14", "KB5066793", confirmed=False),
    _p(22631, 6199, "2025-11-11", "KB5068865"),
    # Windows 10 22H2 (19045): after 2025-10-14 only with Extended Security Updates.
    _p(19045, 6456, "2025-10-14", "KB5066791", confirmed=False),
    _p(19045, 6575, "2025-11-11", "KB5068781", confirmed=False),
)


def required_patch(patches: Iterable[WindowsPatch], build: int, today: date,
                   grace_days: int) -> WindowsPatch | None:
    """The newest release of ``build`` out for longer than the grace period, or None."""
    due = [p for p in patches if p.build == build and p.released + timedelta(days=grace_days)
           <= today]
    return max(due, key=lambda p: (p.released, p.ubr), default=None)


def newest_patch(patches: Iterable[WindowsPatch], build: int) -> WindowsPatch | None:
    return max((p for p in patches if p.build == build), key=lambda p: (p.released, p.ubr),
               default=None)


def kb_numbers(patches: Iterable[WindowsPatch]) -> frozenset[str]:
    return frozenset(p.kb.upper() for p in patches)
