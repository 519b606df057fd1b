"""os_supported: is this operating system release still getting security fixes?

Windows: registry CurrentVersion (CurrentBuildNumber, UBR, EditionID) from the batched snapshot;
ProductName says "Windows 10" even on Windows 11, so the build number decides (>= 22000 is 11).
macOS: /System/Library/CoreServices/SystemVersion.plist. Linux: /etc/os-release and the kernel.
No admin rights are needed for any source.
"""

from __future__ import annotations

import plistlib
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from agent.core.errors import ParseError, SourceMissing
from agent.core.messages import msg
from agent.posture.checks.os_supported.lifecycle import (
    WINDOWS_ENTERPRISE_EDITIONS,
    WINDOWS_IOT_LTSC_EDITIONS,
    WINDOWS_LTSC_EDITIONS,
)
from agent.posture.context import ProbeContext
from agent.posture.dispatch import by_os, version_tuple
from agent.posture.model import Evidence, Finding, Status

CHECK_ID = "os_supported"
EOL_WARNING_DAYS = 30


@dataclass(frozen=True)
class WindowsVersion:
    build: int
    ubr: int
    edition: str
    display_version: str
    product_name: str
    installation_type: str = ""  # Client | Server | Server Core


@dataclass(frozen=True)
class LinuxRelease:
    id: str
    version_id: str
    pretty_name: str
    id_like: tuple[str, ...]


def parse_windows_os(section: Mapping[str, Any]) -> WindowsVersion:
    try:
        build = int(str(section["CurrentBuildNumber"]))
        ubr = int(section.get("UBR") or 0)
    except (KeyError, TypeError, ValueError) as exc:
        raise ParseError("Windows CurrentVersion", f"bad build or UBR: {exc}") from exc
    return WindowsVersion(build, ubr, str(section.get("EditionID") or ""),
                          str(section.get("DisplayVersion") or ""),
                          str(section.get("ProductName") or ""),
                          str(section.get("InstallationType") or ""))


def parse_os_release(text: str) -> LinuxRelease:
    values: dict[str, str] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            parts = shlex.split(raw)
        except ValueError as exc:
            raise ParseError("/etc/os-release", f"{key}: {exc}") from exc
        values[key.strip()] = parts[0] if parts else ""
    if "ID" not in values:
        raise ParseError("/etc/os-release", "no ID field")
    return LinuxRelease(values["ID"], values.get("VERSION_ID", ""),
                        values.get("PRETTY_NAME", values["ID"]),
                        tuple(values.get("ID_LIKE", "").split()))


def parse_system_version_plist(data: bytes) -> str:
    try:
        plist = plistlib.loads(data)
        version = str(plist["ProductVersion"])
        version_tuple(version)
    except (plistlib.InvalidFileException, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ParseError("SystemVersion.plist", str(exc)) from exc
    return version


def _by_end_date(name: str, end: date | None, today: date, evidence: Evidence) -> Finding:
    evidence["end_of_support"] = end.isoformat() if end else None
    if end is None:
        return Finding(Status.PASS, msg("os_supported.supported_open", name=name), evidence)
    if end < today:
        return Finding(Status.FAIL, msg("os_supported.ended", name=name, end=end.isoformat()),
                       evidence, "os_supported.upgrade")
    if end - today <= timedelta(days=EOL_WARNING_DAYS):
        return Finding(Status.WARN, msg("os_supported.ending_soon", name=name,
                                        end=end.isoformat()), evidence, "os_supported.upgrade")
    return Finding(Status.PASS, msg("os_supported.supported", name=name, end=end.isoformat()),
                   evidence)


def long_term_kind(v: WindowsVersion) -> str | None:
    """server | ltsc | iot_ltsc for the long-term servicing editions, else None."""
    if v.installation_type.lower().startswith("server"):
        return "server"
    if v.edition in WINDOWS_LTSC_EDITIONS:
        return "ltsc"
    if v.edition in WINDOWS_IOT_LTSC_EDITIONS:
        return "iot_ltsc"
    return None


def evaluate_windows(v: WindowsVersion, ctx: ProbeContext) -> Finding:
    family = "11" if v.build >= 22000 else "10"
    evidence: Evidence = {"build": v.build, "ubr": v.ubr, "version": f"10.0.{v.build}.{v.ubr}",
                          "edition": v.edition, "display_version": v.display_version,
                          "product_name_registry": v.product_name, "windows": family}
    kind = long_term_kind(v)
    if kind is not None:
        # LTSC, IoT LTSC and Server have their own end dates; a GA date would be wrong.
        evidence["servicing"] = kind
        evidence["installation_type"] = v.installation_type
        for lt in ctx.settings.windows_long_term:
            if lt.build == v.build and lt.kind == kind:
                return _by_end_date(lt.name, lt.end, ctx.today, evidence)
        return Finding(Status.UNKNOWN, msg("os_supported.unknown_build",
                                           name=f"Windows {kind} build {v.build}"),
                       evidence, "os_supported.unknown")
    enterprise = v.edition in WINDOWS_ENTERPRISE_EDITIONS
    evidence["servicing"] = "enterprise" if enterprise else "consumer"
    releases = sorted(ctx.settings.windows_releases, key=lambda r: r.build)
    for r in releases:
        if r.build == v.build:
            return _by_end_date(r.name, r.end_enterprise if enterprise else r.end_consumer,
                                ctx.today, evidence)
    name = f"Windows {family} build {v.build}"
    if releases and v.build > releases[-1].build:
        return Finding(Status.PASS, msg("os_supported.newer_than_table", name=name), evidence)
    if releases and v.build < releases[0].build:
        return Finding(Status.FAIL, msg("os_supported.not_listed", name=name), evidence,
                       "os_supported.upgrade")
    # A build between two releases is an Insider or a build we do not know: do not guess.
    return Finding(Status.UNKNOWN, msg("os_supported.unknown_build", name=name), evidence,
                   "os_supported.unknown")


def evaluate_linux(rel: LinuxRelease, kernel: str, ctx: ProbeContext) -> Finding:
    evidence: Evidence = {"id": rel.id, "version_id": rel.version_id,
                          "pretty_name": rel.pretty_name, "kernel": kernel}
    known = [r for r in ctx.settings.linux_releases if r.distro == rel.id]
    if not known or not rel.version_id:
        return Finding(Status.FAIL, msg("os_supported.not_listed", name=rel.pretty_name),
                       evidence, "os_supported.upgrade")
    try:
        have = version_tuple(rel.version_id)
    except ValueError as exc:
        raise ParseError("/etc/os-release", str(exc)) from exc
    for r in known:
        want = version_tuple(r.version)
        if have[: len(want)] == want:
            return _by_end_date(rel.pretty_name, r.end, ctx.today, evidence)
    if all(have > version_tuple(r.version) for r in known):
        return Finding(Status.PASS, msg("os_supported.newer_than_table", name=rel.pretty_name),
                       evidence)
    return Finding(Status.FAIL, msg("os_supported.not_listed", name=rel.pretty_name), evidence,
                   "os_supported.upgrade")


def evaluate_macos(version: str, ctx: ProbeContext) -> Finding:
    major = version_tuple(version)[0]  # 10.15 -> 10: older than any supported release
    evidence: Evidence = {"product_version": version, "major": major}
    releases = sorted(ctx.settings.macos_releases, key=lambda r: r.major)
    for r in releases:
        if r.major == major:
            return _by_end_date(f"{r.name} {version}", r.end, ctx.today, evidence)
    name = f"macOS {version}"
    if releases and major > releases[-1].major:
        return Finding(Status.PASS, msg("os_supported.newer_than_table", name=name), evidence)
    return Finding(Status.FAIL, msg("os_supported.not_listed", name=name), evidence,
                   "os_supported.upgrade")


def _windows(ctx: ProbeContext) -> Finding:
    return evaluate_windows(parse_windows_os(ctx.windows_section("os")), ctx)


def _macos(ctx: ProbeContext) -> Finding:
    plist = "/System/Library/CoreServices/SystemVersion.plist"
    try:
        data = ctx.path(plist).read_bytes()
    except OSError as exc:
        raise SourceMissing(plist, exc.strerror or "") from exc
    return evaluate_macos(parse_system_version_plist(data), ctx)


def _linux(ctx: ProbeContext) -> Finding:
    try:
        text = ctx.read_text("/etc/os-release")
    except SourceMissing:  # os-release(5): /usr/lib/os-release is the fallback
        text = ctx.read_text("/usr/lib/os-release")
    try:
        kernel = ctx.read_text("/proc/sys/kernel/osrelease").strip()
    except SourceMissing:
        kernel = ""  # evidence only
    return evaluate_linux(parse_os_release(text), kernel, ctx)


def check(ctx: ProbeContext) -> Finding:
    return by_os(ctx, CHECK_ID, windows=_windows, macos=_macos, linux=_linux)
