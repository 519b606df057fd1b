"""forbidden_software / required_software: which programs are running, by process name.

Source: the process list (psutil through ctx.processes(); on Windows this covers Winny.exe,
Share.exe and friends, the P2P tools the municipal guidelines name). Only names are compared and
kept as evidence, never command lines (they can hold file names and tokens). An empty or
unreadable process list is unknown: a real system always runs something.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.core.errors import SourceMissing
from agent.core.messages import msg
from agent.policy.model import SoftwareRule
from agent.posture.context import ProbeContext, ProcInfo
from agent.posture.model import Finding, Status

SOURCES: tuple[str, ...] = ()  # the process list only; no file is read


def _norm(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    return base.removesuffix(".exe")


def running_names(ctx: ProbeContext) -> set[str]:
    try:
        procs: list[ProcInfo] = ctx.processes()
    except Exception as exc:  # psutil AccessDenied and friends: we cannot see, so unknown
        raise SourceMissing("process list", f"{type(exc).__name__}: {exc}"[:200]) from exc
    if not procs:
        raise SourceMissing("process list", "empty")
    names = {_norm(p.name) for p in procs if p.name}
    names |= {_norm(p.exe) for p in procs if p.exe}
    return names


def matches(rule: SoftwareRule, names: set[str]) -> list[str]:
    return sorted({p for p in rule.processes if _norm(p) in names})


def _for_os(rules: Sequence[SoftwareRule], os_name: str) -> list[SoftwareRule]:
    return [r for r in rules if os_name in r.os]


def check_forbidden(ctx: ProbeContext, rules: Sequence[SoftwareRule]) -> Finding:
    names = running_names(ctx)
    found = [(r, m) for r in _for_os(rules, ctx.os) if (m := matches(r, names))]
    checked = [r.name for r in _for_os(rules, ctx.os)]
    evidence = {"checked": checked,
                "found": [{"name": r.name, "processes": m} for r, m in found]}
    if not checked:
        return Finding(Status.PASS, msg("forbidden_software.none_listed", os=ctx.os), evidence)
    if found:
        return Finding(Status.FAIL, msg("forbidden_software.found",
                                        names=", ".join(r.name for r, _ in found)),
                       evidence, "forbidden_software.remove")
    return Finding(Status.PASS, msg("forbidden_software.none", count=len(checked)),
                   evidence)


def check_required(ctx: ProbeContext, rules: Sequence[SoftwareRule]) -> Finding:
    names = running_names(ctx)
    wanted = _for_os(rules, ctx.os)
    missing = [r.name for r in wanted if not matches(r, names)]
    # A signer requirement needs the OS to tell who signed the running binary; until a probe
    # reports signers, a name match alone cannot satisfy it (fail closed).
    unverifiable = [r.name for r in wanted if r.signer and r.name not in missing]
    evidence = {"required": [r.name for r in wanted], "missing": missing,
                "signer_unverified": unverifiable}
    if missing:
        return Finding(Status.FAIL, msg("required_software.missing", names=", ".join(missing)),
                       evidence, "required_software.install")
    if unverifiable:
        return Finding(Status.UNKNOWN, msg("required_software.signer_unverified",
                                           names=", ".join(unverifiable)),
                       evidence, "required_software.unknown")
    return Finding(Status.PASS, msg("required_software.all_running", count=len(wanted)),
                   evidence)
