"""End-of-support dates of the operating systems staff run at home.

Sources (checked 2026-11): Microsoft Lifecycle pages "Windows 11 Home and Pro" and "Windows 11
Enterprise and Education" release tables, "Windows 10 Home and Pro" (22H2 ended 2025-10-14;
the consumer Extended Security Update year ended 2026-10-13); Debian wiki LTS; Ubuntu release
cycle page; Fedora schedule; Red Hat Enterprise Linux life cycle; Apple security releases
(Apple patches the
current macOS and the two before it). A signed policy may replace every table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class WindowsRelease:
    build: int  # CurrentBuildNumber
    name: str  # "Windows 11 24H2"
    end_consumer: date  # Home, Pro, Pro for Workstations, Pro Education, SE
    end_enterprise: date  # Enterprise, Education, IoT Enterprise


@dataclass(frozen=True)
class LongTermRelease:
    """A long-term servicing release: its own end date, whatever the GA release of the same
    build says (Windows 11 24H2 = build 26100 = Enterprise LTSC 2024 = Server 2025)."""

    build: int
    kind: str  # ltsc | iot_ltsc | server
    name: str
    end: date  # end of (extended) support: the last security update


@dataclass(frozen=True)
class LinuxRelease:
    distro: str  # os-release ID
    version: str  # os-release VERSION_ID (compared numerically, dot by dot)
    end: date


@dataclass(frozen=True)
class MacRelease:
    major: int
    name: str
    end: date | None  # None: still supported, end not announced


WINDOWS_RELEASES: tuple[WindowsRelease, ...] = (
    WindowsRelease(19044, "Windows 10 21H2", date(2023, 6, 13), date(2024, 6, 11)),
    WindowsRelease(19045, "Windows 10 22H2", date(2026, 10, 13), date(2025, 10, 14)),
    WindowsRelease(22000, "Windows 11 21H2", date(2023, 10, 10), date(2024, 10, 8)),
    WindowsRelease(22621, "Windows 11 22H2", date(2024, 10, 8), date(2025, 10, 14)),
    WindowsRelease(22631, "Windows 11 23H2", date(2025, 11, 11), date(2026, 11, 10)),
    WindowsRelease(26100, "Windows 11 24H2", date(2026, 10, 13), date(2027, 10, 12)),
    WindowsRelease(26200, "Windows 11 25H2", date(2027, 10, 12), date(2028, 10, 10)),
)

# Microsoft Lifecycle pages "Windows 10 Enterprise LTSC 2019/2021", "Windows 10 IoT Enterprise
# LTSC 2021", "Windows 11 Enterprise LTSC 2024", "Windows 11 IoT Enterprise LTSC 2024", "Windows
# Server 2016/2019/2022/2025" (extended end dates); the 2024 LTSC dates also in the Windows 11
# version history table (wikimili mirror of Wikipedia, found with the search tool).
WINDOWS_LONG_TERM: tuple[LongTermRelease, ...] = (
    LongTermRelease(14393, "ltsc", "Windows 10 Enterprise LTSB 2016", date(2026, 10, 13)),
    LongTermRelease(14393, "iot_ltsc", "Windows 10 IoT Enterprise LTSB 2016", date(2026, 10, 13)),
    LongTermRelease(17763, "ltsc", "Windows 10 Enterprise LTSC 2019", date(2029, 1, 9)),
    LongTermRelease(17763, "iot_ltsc", "Windows 10 IoT Enterprise LTSC 2019", date(2029, 1, 9)),
    LongTermRelease(19044, "ltsc", "Windows 10 Enterprise LTSC 2021", date(2027, 1, 12)),
    LongTermRelease(19044, "iot_ltsc", "Windows 10 IoT Enterprise LTSC 2021", date(2032, 1, 13)),
    LongTermRelease(26100, "ltsc", "Windows 11 Enterprise LTSC 2024", date(2029, 10, 9)),
    LongTermRelease(26100, "iot_ltsc", "Windows 11 IoT Enterprise LTSC 2024", date(2034, 10, 10)),
    LongTermRelease(14393, "server", "Windows Server 2016", date(2027, 1, 12)),
    LongTermRelease(17763, "server", "Windows Server 2019", date(2029, 1, 9)),
    LongTermRelease(20348, "server", "Windows Server 2022", date(2031, 10, 14)),
    LongTermRelease(26100, "server", "Windows Server 2025", date(2034, 11, 14)),
)
# Registry EditionID of the long-term editions (N = without media features).
WINDOWS_LTSC_EDITIONS = frozenset({"EnterpriseS", "EnterpriseSN"})
WINDOWS_IOT_LTSC_EDITIONS = frozenset({"IoTEnterpriseS", "IoTEnterpriseSK"})

# Editions that follow the Enterprise/Education servicing timeline (registry EditionID values).
WINDOWS_ENTERPRISE_EDITIONS = frozenset({
    "Enterprise", "EnterpriseN", "EnterpriseS", "EnterpriseSN", "Education", "EducationN",
    "IoTEnterprise", "IoTEnterpriseS", "EnterpriseG",
})

LINUX_RELEASES: tuple[LinuxRelease, ...] = (
    LinuxRelease("debian", "11", date(2026, 8, 31)),
    LinuxRelease("debian", "12", date(2028, 6, 30)),
    LinuxRelease("debian", "13", date(2030, 6, 30)),
    LinuxRelease("ubuntu", "20.04", date(2025, 5, 31)),
    LinuxRelease("ubuntu", "22.04", date(2027, 6, 1)),
    LinuxRelease("ubuntu", "24.04", date(2029, 5, 31)),
    LinuxRelease("ubuntu", "25.04", date(2026, 1, 15)),
    LinuxRelease("ubuntu", "25.10", date(2026, 7, 9)),
    LinuxRelease("ubuntu", "26.04", date(2031, 5, 31)),
    LinuxRelease("fedora", "42", date(2026, 5, 13)),
    LinuxRelease("fedora", "43", date(2026, 12, 9)),
    LinuxRelease("fedora", "44", date(2027, 5, 19)),
    LinuxRelease("rhel", "8", date(2029, 5, 31)),
    LinuxRelease("rhel", "9", date(2032, 5, 31)),
    LinuxRelease("rhel", "10", date(2035, 5, 31)),
    LinuxRelease("rocky", "8", date(2029, 5, 31)),
    LinuxRelease("rocky", "9", date(2032, 5, 31)),
    LinuxRelease("almalinux", "8", date(2029, 3, 1)),
    LinuxRelease("almalinux", "9", date(2032, 5, 31)),
)

MACOS_RELEASES: tuple[MacRelease, ...] = (
    MacRelease(13, "macOS Ventura", date(2025, 9, 15)),
    MacRelease(14, "macOS Sonoma", date(2026, 9, 15)),
    MacRelease(15, "macOS Sequoia", None),
    MacRelease(26, "macOS Tahoe", None),
)
