"""Windows: patch level and update health from the batched snapshot (sections "updates" and "os").

Only numbers, booleans, ISO dates and KB numbers are used; update titles are localized
("…の累積更新プログラム (KB5046617)") and only their KB number is read from them.

Patch level (decides): the PC's build.UBR (registry, what it really runs) against the newest
release of that build in the patch table (windows_patches.py, replaceable by the signed policy)
that has been out for more than ``windows_patch_grace_days``. Below it fails, whatever the
history says: a cumulative update can fail for months while .NET updates and the Windows
Security platform update (KB5007651) keep succeeding. A cumulative update of the table whose
last attempt failed is a warning of its own. When the table has no release for the build, or
its newest one is older than ``windows_patch_table_max_age_days`` (the table itself is out of
date), the history below decides, and a stale table warns so that IT updates it.

Age of the last update (supporting evidence; decides only without a usable table): the newest
successful install (operation 1 = install; result 2 =
succeeded, 3 = succeeded with errors) that carries a KB number other than the Defender
definitions (KB2267602), the Defender platform (KB4052623) and the malicious software removal
tool (KB890830). Those arrive daily or monthly whatever the state of Windows itself, and entries
without any KB number are drivers or Store items, so neither says Windows is patched.

The snapshot holds the 100 newest history entries. Defender definitions alone can fill them in
about a month; when no qualifying install is among them, the last one is older than the oldest
entry shown: if that entry is already older than the limit the PC fails, otherwise it is unknown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.core.errors import ParseError
from agent.core.messages import msg
from agent.posture.checks.os_supported.check import WindowsVersion, parse_windows_os
from agent.posture.checks.os_updates.common import Issue, age_days, as_utc, conclude
from agent.posture.checks.os_updates.windows_patches import (
    kb_numbers,
    newest_patch,
    required_patch,
)
from agent.posture.context import ProbeContext
from agent.posture.model import Evidence, Finding, Status

SERVICE_DISABLED = 4  # Services\wuauserv Start: 2 auto, 3 manual (default), 4 disabled
# Defender definitions, Defender platform, MSRT, Windows Security platform (KB5007651).
NOT_WINDOWS_PATCHES = frozenset({"KB2267602", "KB4052623", "KB890830", "KB5007651"})
_KB = re.compile(r"KB(\d{5,8})", re.IGNORECASE)


@dataclass(frozen=True)
class HistoryEntry:
    date: datetime | None  # None: the snapshot gave no date (before 1970 or none recorded)
    operation: int
    result_code: int
    kbs: tuple[str, ...]
    title: str

    @property
    def succeeded_install(self) -> bool:
        return self.operation == 1 and self.result_code in (2, 3)

    @property
    def is_windows_patch(self) -> bool:
        return (self.succeeded_install and self.date is not None
                and any(k not in NOT_WINDOWS_PATCHES for k in self.kbs))

    @property
    def failed_install(self) -> bool:
        return self.operation == 1 and self.result_code in (4, 5)


@dataclass(frozen=True)
class WindowsUpdateFacts:
    wuauserv_start: int | None
    no_auto_update: int | None
    reboot_required: bool
    history: tuple[HistoryEntry, ...] | None  # None: the snapshot could not query it
    history_error: str = ""


def _opt_int(section: Mapping[str, Any], key: str) -> int | None:
    value = section.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError("Windows updates", f"{key} is not a number: {value!r}"[:120])
    return value


def _entry(raw: Any) -> HistoryEntry:
    if not isinstance(raw, Mapping):
        raise ParseError("Windows update history", "entry is not an object")
    try:
        raw_date = raw["date"]
        date = None if raw_date is None else as_utc(datetime.fromisoformat(str(raw_date)))
        operation, result = raw["operation"], raw["result_code"]
    except (KeyError, ValueError) as exc:
        raise ParseError("Windows update history", f"bad entry: {exc}") from exc
    if not isinstance(operation, int) or not isinstance(result, int):
        raise ParseError("Windows update history", "operation/result_code are not numbers")
    title = str(raw.get("title") or "")
    kbs = tuple(dict.fromkeys(f"KB{n}" for n in _KB.findall(title)))
    return HistoryEntry(date, operation, result, kbs, title)


def parse_updates_section(section: Mapping[str, Any]) -> WindowsUpdateFacts:
    if "history" not in section:
        raise ParseError("Windows updates", "history is missing")
    history = section["history"]
    if history is not None and not isinstance(history, list):
        raise ParseError("Windows updates", "history is not a list")
    reboot = section.get("reboot_required")
    if not isinstance(reboot, bool):
        raise ParseError("Windows updates", "reboot_required is not true/false")
    # Newest first; entries without a date keep the snapshot's order after the dated ones.
    entries = None if history is None else tuple(
        sorted((_entry(e) for e in history),
               key=lambda e: (e.date is not None, e.date or datetime.min.replace(tzinfo=UTC)),
               reverse=True))
    return WindowsUpdateFacts(_opt_int(section, "wuauserv_start"),
                              _opt_int(section, "no_auto_update"), reboot, entries,
                              str(section.get("history_error") or "")[:200])


def last_windows_patch(history: tuple[HistoryEntry, ...]) -> HistoryEntry | None:
    return next((e for e in history if e.is_windows_patch), None)  # history is newest first


def evaluate_windows(facts: WindowsUpdateFacts, version: WindowsVersion,
                     ctx: ProbeContext) -> Finding:
    s = ctx.settings
    limit = s.max_days_since_update
    evidence: Evidence = {
        "build": version.build, "ubr": version.ubr,
        "version": f"10.0.{version.build}.{version.ubr}",
        "wuauserv_start": facts.wuauserv_start, "no_auto_update": facts.no_auto_update,
        "reboot_required": facts.reboot_required,
        "history_entries": None if facts.history is None else len(facts.history),
        "max_days_since_update": limit,
    }
    issues: list[Issue] = []
    if facts.wuauserv_start == SERVICE_DISABLED:
        issues.append(Issue(Status.FAIL, msg("os_updates.windows.service_disabled"),
                            "os_updates.service_disabled"))
    required = s.windows_min_ubr.get(version.build)
    if required is not None:
        evidence["required_ubr"] = required
        if version.ubr < required:
            issues.append(Issue(Status.FAIL, msg(
                "os_updates.windows.below_min", version=f"{version.build}.{version.ubr}",
                required=f"{version.build}.{required}"), "os_updates.windows"))
    table_decides = _patch_level(version, ctx, evidence, issues)
    _failed_cumulative(facts, version, ctx, evidence, issues)
    last = last_windows_patch(facts.history or ())
    days = 0
    if table_decides:
        if last is not None and last.date is not None:
            days = age_days(last.date, ctx.now)
            evidence["last_update"] = {"date": last.date.isoformat(), "kbs": list(last.kbs),
                                       "title": last.title}
            evidence["days_since_update"] = days
        if facts.history is None:
            evidence["history_error"] = facts.history_error
    elif facts.history is None:
        # The other facts still count: a disabled service fails whatever the history says.
        evidence["history_error"] = facts.history_error
        issues.append(Issue(Status.UNKNOWN, msg("os_updates.windows.history_unreadable",
                                                detail=facts.history_error or "?"),
                            "os_updates.unknown"))
    elif last is not None and last.date is not None:
        days = age_days(last.date, ctx.now)
        evidence["last_update"] = {"date": last.date.isoformat(), "kbs": list(last.kbs),
                                   "title": last.title}
        evidence["days_since_update"] = days
        if days > limit:
            issues.append(Issue(Status.FAIL, msg("os_updates.windows.stale", days=days,
                                                 date=last.date.date().isoformat(), limit=limit),
                                "os_updates.windows"))
    elif (oldest := next((e.date for e in reversed(facts.history or ()) if e.date),
                         None)) is None:
        issues.append(Issue(Status.UNKNOWN, msg("os_updates.windows.no_history"),
                            "os_updates.windows"))
    else:
        evidence["history_since"] = oldest.isoformat()
        if age_days(oldest, ctx.now) > limit:
            issues.append(Issue(Status.FAIL, msg("os_updates.windows.none_since",
                                                 date=oldest.date().isoformat(), limit=limit),
                                "os_updates.windows"))
        else:
            issues.append(Issue(Status.UNKNOWN, msg("os_updates.windows.history_too_short",
                                                    date=oldest.date().isoformat()),
                                "os_updates.windows"))
    if facts.no_auto_update == 1:
        issues.append(Issue(Status.WARN, msg("os_updates.windows.auto_update_off"),
                            "os_updates.auto_update_off"))
    if facts.reboot_required:
        issues.append(Issue(Status.WARN, msg("os_updates.reboot_required"), "os_updates.reboot"))
    if table_decides:
        ok = msg("os_updates.windows.ok_patch_level", version=f"{version.build}.{version.ubr}",
                 kb=evidence["patch_required"]["kb"])
    else:
        ok = msg("os_updates.windows.ok", days=days,
                 date=last.date.date().isoformat() if last and last.date else "")
    return conclude(issues, ok, evidence)


def _patch_level(version: WindowsVersion, ctx: ProbeContext, evidence: Evidence,
                 issues: list[Issue]) -> bool:
    """Judge build.UBR against the patch table; False when the table cannot judge this PC."""
    s = ctx.settings
    newest = newest_patch(s.windows_patches, version.build)
    if newest is None:
        evidence["patch_table"] = "no release listed for this build"
        return False
    evidence["patch_table_newest"] = {"ubr": newest.ubr, "kb": newest.kb,
                                      "released": newest.released.isoformat()}
    if ctx.today - newest.released > timedelta(days=s.windows_patch_table_max_age_days):
        evidence["patch_table"] = "out of date"
        issues.append(Issue(Status.WARN, msg("os_updates.windows.table_stale",
                                             date=newest.released.isoformat()),
                            "os_updates.table_stale"))
        return False
    required = required_patch(s.windows_patches, version.build, ctx.today,
                              s.windows_patch_grace_days)
    if required is None:  # the table starts after this date: it cannot judge
        evidence["patch_table"] = "no release due yet"
        return False
    evidence["patch_table"] = "used"
    evidence["patch_required"] = {"ubr": required.ubr, "kb": required.kb,
                                  "released": required.released.isoformat()}
    if version.ubr < required.ubr:
        issues.append(Issue(Status.FAIL, msg(
            "os_updates.windows.behind", version=f"{version.build}.{version.ubr}",
            required=f"{version.build}.{required.ubr}", kb=required.kb,
            date=required.released.isoformat()), "os_updates.windows"))
    return True


def _failed_cumulative(facts: WindowsUpdateFacts, version: WindowsVersion, ctx: ProbeContext,
                       evidence: Evidence, issues: list[Issue]) -> None:
    """Failed installs whose KB never succeeded later; a cumulative update of the table among
    them (one the PC's UBR has not reached) is a warning of its own."""
    if not facts.history:
        return
    succeeded: set[str] = set()
    failed: dict[str, HistoryEntry] = {}
    for e in reversed(facts.history):  # oldest first
        for kb in e.kbs:
            if e.succeeded_install:
                succeeded.add(kb)
                failed.pop(kb, None)
            elif e.failed_install and kb not in NOT_WINDOWS_PATCHES:
                failed[kb] = e
    if not failed:
        return
    evidence["failed_updates"] = [
        {"kb": kb, "date": e.date.isoformat() if e.date else None, "result_code": e.result_code}
        for kb, e in sorted(failed.items())]
    cumulative = kb_numbers(p for p in ctx.settings.windows_patches
                            if p.build == version.build and p.ubr > version.ubr)
    hits = sorted(kb for kb in failed if kb in cumulative)
    if hits:
        e = failed[hits[-1]]
        issues.append(Issue(Status.WARN, msg(
            "os_updates.windows.cumulative_failed", kb=", ".join(hits),
            date=e.date.date().isoformat() if e.date else "?"), "os_updates.windows_failed"))


def check_windows(ctx: ProbeContext) -> Finding:
    facts = parse_updates_section(ctx.windows_section("updates"))
    version = parse_windows_os(ctx.windows_section("os"))
    return evaluate_windows(facts, version, ctx)
