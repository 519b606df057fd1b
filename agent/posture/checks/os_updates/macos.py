"""macOS: Software Update's own record plus the OS version.

``/Library/Preferences/com.apple.SoftwareUpdate.plist`` (binary or XML, world-readable) is written
by softwareupdated after each scan: ``LastSuccessfulDate`` (last successful check),
``RecommendedUpdates`` (one dict per pending update) and ``LastRecommendedUpdatesAvailable``
(their count), and the settings ``AutomaticCheckEnabled``, ``AutomaticDownload``,
``CriticalUpdateInstall`` ("Install Security Responses and system files") and
``AutomaticallyInstallMacOSUpdates``. A setting that is absent has never been changed and keeps
Apple's default, which is on.

The counter has been seen to stay at 1 after the update was installed; the list is preferred
when it names updates, and the counter is used only when the list is empty or absent (a stale
counter fails, and opening Software Update rescans and clears it).
"""

from __future__ import annotations

import plistlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.core.errors import ParseError, SourceMissing
from agent.core.messages import msg
from agent.posture.checks.os_supported.check import parse_system_version_plist
from agent.posture.checks.os_updates.common import Issue, age_days, as_utc, conclude, short_list
from agent.posture.context import ProbeContext
from agent.posture.dispatch import version_tuple
from agent.posture.model import Evidence, Finding, Status

SOFTWARE_UPDATE_PLIST = "/Library/Preferences/com.apple.SoftwareUpdate.plist"
SYSTEM_VERSION_PLIST = "/System/Library/CoreServices/SystemVersion.plist"
SOURCES: tuple[str, ...] = (SOFTWARE_UPDATE_PLIST, SYSTEM_VERSION_PLIST)
_WHAT = "com.apple.SoftwareUpdate.plist"


@dataclass(frozen=True)
class MacUpdateFacts:
    automatic_check: bool  # absent keys keep Apple's default (on)
    automatic_download: bool
    critical_update_install: bool
    automatically_install_macos: bool | None  # default depends on the release: evidence only
    last_successful: datetime | None
    recommended: tuple[str, ...]
    recommended_count: int


def _flag(plist: dict[str, Any], key: str) -> bool | None:
    value = plist.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise ParseError(_WHAT, f"{key} is not a boolean: {value!r}"[:120])


def _update_name(item: Any) -> str:
    if not isinstance(item, dict):
        raise ParseError(_WHAT, "RecommendedUpdates entry is not a dictionary")
    name = str(item.get("Display Name") or item.get("Identifier") or "?")
    version = str(item.get("Display Version") or "")
    return f"{name} {version}".strip()


def parse_software_update_plist(data: bytes) -> MacUpdateFacts:
    try:
        plist = plistlib.loads(data)
    except (plistlib.InvalidFileException, ValueError, TypeError, OverflowError) as exc:
        raise ParseError(_WHAT, str(exc) or type(exc).__name__) from exc
    if not isinstance(plist, dict):
        raise ParseError(_WHAT, "top level is not a dictionary")
    last = plist.get("LastSuccessfulDate")
    if last is not None and not isinstance(last, datetime):
        raise ParseError(_WHAT, "LastSuccessfulDate is not a date")
    items = plist.get("RecommendedUpdates", [])
    counter = plist.get("LastRecommendedUpdatesAvailable", 0)
    if not isinstance(items, list) or isinstance(counter, bool) or not isinstance(counter, int):
        raise ParseError(_WHAT, "RecommendedUpdates/LastRecommendedUpdatesAvailable malformed")
    names = tuple(_update_name(i) for i in items)

    def default_on(key: str) -> bool:
        value = _flag(plist, key)
        return True if value is None else value

    return MacUpdateFacts(default_on("AutomaticCheckEnabled"), default_on("AutomaticDownload"),
                          default_on("CriticalUpdateInstall"),
                          _flag(plist, "AutomaticallyInstallMacOSUpdates"),
                          as_utc(last) if last else None, names, len(names) or max(counter, 0))


def evaluate_macos(facts: MacUpdateFacts, version: str, ctx: ProbeContext) -> Finding:
    s = ctx.settings
    limit = s.max_days_since_update
    major = version_tuple(version)[0]
    evidence: Evidence = {
        "product_version": version, "automatic_check": facts.automatic_check,
        "automatic_download": facts.automatic_download,
        "critical_update_install": facts.critical_update_install,
        "automatically_install_macos_updates": facts.automatically_install_macos,
        "last_successful_check": facts.last_successful.isoformat() if facts.last_successful
        else None,
        "recommended_updates": list(facts.recommended), "recommended_count":
        facts.recommended_count, "max_days_since_update": limit,
    }
    issues: list[Issue] = []
    required = s.macos_min_version.get(major)
    if required is not None:
        evidence["required_version"] = required
        if version_tuple(version) < version_tuple(required):
            issues.append(Issue(Status.FAIL, msg("os_updates.macos.below_min", version=version,
                                                 required=required), "os_updates.macos"))
    if facts.recommended_count:
        names = short_list(facts.recommended) if facts.recommended else "?"
        issues.append(Issue(Status.FAIL, msg("os_updates.macos.pending",
                                             count=facts.recommended_count, names=names),
                            "os_updates.macos"))
    date = ""
    if facts.last_successful is None:
        issues.append(Issue(Status.UNKNOWN, msg("os_updates.macos.never_checked"),
                            "os_updates.macos"))
    else:
        days = age_days(facts.last_successful, ctx.now)
        date = facts.last_successful.date().isoformat()
        evidence["days_since_check"] = days
        if days > limit:
            issues.append(Issue(Status.FAIL, msg("os_updates.macos.check_stale", days=days,
                                                 date=date, limit=limit), "os_updates.macos"))
    if not facts.critical_update_install:
        issues.append(Issue(Status.WARN, msg("os_updates.macos.security_responses_off"),
                            "os_updates.macos_auto"))
    if not facts.automatic_check:
        issues.append(Issue(Status.WARN, msg("os_updates.macos.auto_check_off"),
                            "os_updates.macos_auto"))
    return conclude(issues, msg("os_updates.macos.ok", version=version, date=date), evidence)


def _read_bytes(ctx: ProbeContext, absolute: str) -> bytes:
    try:
        return ctx.path(absolute).read_bytes()
    except OSError as exc:
        raise SourceMissing(absolute, exc.strerror or type(exc).__name__) from exc


def check_macos(ctx: ProbeContext) -> Finding:
    facts = parse_software_update_plist(_read_bytes(ctx, SOFTWARE_UPDATE_PLIST))
    version = parse_system_version_plist(_read_bytes(ctx, SYSTEM_VERSION_PLIST))
    return evaluate_macos(facts, version, ctx)
