"""Windows: patch level and update health from the batched snapshot (sections "updates" and "os").

Only numbers, booleans, ISO dates and KB numbers are used; update titles are localized
("…の累積更新プログラム (KB5046617)") and only their KB number is read from them.

Age of the last update: the newest successful install (operation 1 = install; result 2 =
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
from datetime import datetime
from typing import Any

from agent.core.errors import ParseError
from agent.core.messages import msg
from agent.posture.checks.os_supported.check import WindowsVersion, parse_windows_os
from agent.posture.checks.os_updates.common import Issue, age_days, as_utc, conclude
from agent.posture.context import ProbeContext
from agent.posture.model import Evidence, Finding, Status

SERVICE_DISABLED = 4  # Services\wuauserv Start: 2 auto, 3 manual (default), 4 disabled
NOT_WINDOWS_PATCHES = frozenset({"KB2267602", "KB4052623", "KB890830"})
_KB = re.compile(r"KB(\d{5,8})", re.IGNORECASE)


@dataclass(frozen=True)
class HistoryEntry:
    date: datetime
    operation: int
    result_code: int
    kbs: tuple[str, ...]
    title: str

    @property
    def succeeded_install(self) -> bool:
        return self.operation == 1 and self.result_code in (2, 3)

    @property
    def is_windows_patch(self) -> bool:
        return self.succeeded_install and any(k not in NOT_WINDOWS_PATCHES for k in self.kbs)


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
        date = as_utc(datetime.fromisoformat(str(raw["date"])))
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
    entries = None if history is None else tuple(
        sorted((_entry(e) for e in history), key=lambda e: e.date, reverse=True))
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
    last = last_windows_patch(facts.history or ())
    days = 0
    if facts.history is None:
        # The other facts still count: a disabled service fails whatever the history says.
        evidence["history_error"] = facts.history_error
        issues.append(Issue(Status.UNKNOWN, msg("os_updates.windows.history_unreadable",
                                                detail=facts.history_error or "?"),
                            "os_updates.unknown"))
    elif last is not None:
        days = age_days(last.date, ctx.now)
        evidence["last_update"] = {"date": last.date.isoformat(), "kbs": list(last.kbs),
                                   "title": last.title}
        evidence["days_since_update"] = days
        if days > limit:
            issues.append(Issue(Status.FAIL, msg("os_updates.windows.stale", days=days,
                                                 date=last.date.date().isoformat(), limit=limit),
                                "os_updates.windows"))
    elif not facts.history:
        issues.append(Issue(Status.UNKNOWN, msg("os_updates.windows.no_history"),
                            "os_updates.windows"))
    else:
        oldest = facts.history[-1].date
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
    ok = msg("os_updates.windows.ok", days=days,
             date=last.date.date().isoformat() if last else "")
    return conclude(issues, ok, evidence)


def check_windows(ctx: ProbeContext) -> Finding:
    facts = parse_updates_section(ctx.windows_section("updates"))
    version = parse_windows_os(ctx.windows_section("os"))
    return evaluate_windows(facts, version, ctx)
