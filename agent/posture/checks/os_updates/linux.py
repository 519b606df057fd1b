"""Linux: which package manager, what it says is pending, how fresh its metadata is, reboot.

Stale metadata: apt and dnf can only report updates they have heard of. When the lists were last
refreshed longer ago than ``max_days_since_update`` (or never), "no security updates pending" is
not a fact, so the result is ``unknown`` (not ``warn``: a warn counts as compliant, and a PC that
has not looked for fixes in months would pass). Pending security updates found in stale lists
still fail: they are certainly missing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from agent.core.errors import ProbeError, SourceMissing, ToolMissing, Unsupported
from agent.core.messages import msg
from agent.posture.checks.os_supported.check import LinuxRelease, parse_os_release
from agent.posture.checks.os_updates import apt as updates_apt
from agent.posture.checks.os_updates import dnf as updates_dnf
from agent.posture.checks.os_updates.common import (
    Issue,
    age_days,
    conclude,
    newest_mtime,
    short_list,
)
from agent.posture.context import ProbeContext
from agent.posture.model import Evidence, Finding, Status

REBOOT_FLAG = "/var/run/reboot-required"  # written by update-notifier-common / unattended-upgrades
REBOOT_PKGS = "/var/run/reboot-required.pkgs"
SOURCES: tuple[str, ...] = ("/etc/os-release", "/usr/lib/os-release", REBOOT_FLAG, REBOOT_PKGS)

_APT_FAMILY = frozenset({"debian", "ubuntu"})
_DNF_FAMILY = frozenset({"fedora", "rhel", "centos"})
EVIDENCE_NAMES = 10


@dataclass(frozen=True)
class LinuxUpdateFacts:
    manager: str  # apt | dnf
    pending_total: int | None  # None: only security updates were asked for (dnf)
    security: tuple[str, ...]  # names of pending security updates
    metadata_updated: datetime | None  # newest lists/cache file; None: never downloaded
    reboot_required: bool
    reboot_packages: tuple[str, ...] = ()


def choose_manager(release: LinuxRelease, which: dict[str, bool]) -> str:
    """The distribution family decides; a derivative we do not know uses whichever tool it has."""
    family = {release.id, *release.id_like}
    if family & _APT_FAMILY:
        preferred = "apt"
    elif family & _DNF_FAMILY:
        preferred = "dnf"
    elif which["apt-get"]:
        preferred = "apt"
    elif which["dnf"]:
        preferred = "dnf"
    else:
        raise Unsupported(f"package manager of {release.pretty_name}")
    tool = "apt-get" if preferred == "apt" else "dnf"
    if not which[tool]:
        raise ToolMissing(tool)
    return preferred


def _read_release(ctx: ProbeContext) -> LinuxRelease:
    try:
        text = ctx.read_text("/etc/os-release")
    except SourceMissing:
        text = ctx.read_text("/usr/lib/os-release")
    return parse_os_release(text)


def _reboot_flag(ctx: ProbeContext) -> tuple[bool, tuple[str, ...]]:
    if not ctx.path(REBOOT_FLAG).exists():
        return False, ()
    try:
        pkgs = tuple(p.strip() for p in ctx.read_text(REBOOT_PKGS).splitlines() if p.strip())
    except ProbeError:
        pkgs = ()  # the list is evidence only; the flag alone says "restart"
    return True, pkgs


def probe_apt(ctx: ProbeContext) -> LinuxUpdateFacts:
    result = ctx.runner.run(updates_apt.apt_command(ctx.root)).check()
    sim = updates_apt.parse_apt_simulation(result.text())
    reboot, pkgs = _reboot_flag(ctx)
    return LinuxUpdateFacts("apt", len(sim.packages), sim.security,
                            newest_mtime(ctx, updates_apt.APT_LISTS, updates_apt.APT_LIST_STAMPS),
                            reboot, pkgs)


def probe_dnf(ctx: ProbeContext) -> LinuxUpdateFacts:
    result = ctx.runner.run(["dnf", "-q", "-C", "check-update", "--security"]).check(0, 100)
    found = updates_dnf.parse_dnf_check_update(result.text(), result.returncode)
    reboot = found.kernel_reboot_pending
    if ctx.runner.which("needs-restarting"):  # dnf-utils; exit 1 = reboot needed
        # A failure here costs only this hint; the kernel note above still stands.
        with contextlib.suppress(ProbeError):
            reboot = reboot or ctx.runner.run(["needs-restarting", "-r"]).returncode == 1
    stamps = [newest_mtime(ctx, d, updates_dnf.DNF_CACHE_STAMPS) for d in updates_dnf.DNF_CACHES]
    newest = max((s for s in stamps if s is not None), default=None)
    return LinuxUpdateFacts("dnf", None, found.packages, newest, reboot)


def evaluate_linux(facts: LinuxUpdateFacts, ctx: ProbeContext) -> Finding:
    s = ctx.settings
    evidence: Evidence = {
        "package_manager": facts.manager, "pending_total": facts.pending_total,
        "pending_security": len(facts.security),
        "security_packages": list(facts.security[:EVIDENCE_NAMES]),
        "metadata_updated": facts.metadata_updated.isoformat() if facts.metadata_updated else None,
        "reboot_required": facts.reboot_required,
        "reboot_packages": list(facts.reboot_packages[:EVIDENCE_NAMES]),
        "max_pending_security_updates": s.max_pending_security_updates,
    }
    issues: list[Issue] = []
    count = len(facts.security)
    if count > s.max_pending_security_updates:
        issues.append(Issue(Status.FAIL, msg("os_updates.linux.security_pending", count=count,
                                             names=short_list(facts.security)),
                            "os_updates.linux"))
    if facts.metadata_updated is None:
        issues.append(Issue(Status.UNKNOWN, msg("os_updates.linux.lists_missing"),
                            "os_updates.linux_refresh"))
    else:
        days = age_days(facts.metadata_updated, ctx.now)
        evidence["metadata_age_days"] = days
        if days > s.max_days_since_update:
            issues.append(Issue(Status.UNKNOWN, msg("os_updates.linux.lists_stale", days=days,
                                                    limit=s.max_days_since_update),
                                "os_updates.linux_refresh"))
    if 0 < count <= s.max_pending_security_updates:
        issues.append(Issue(Status.WARN, msg("os_updates.linux.security_within_limit",
                                             count=count, limit=s.max_pending_security_updates),
                            "os_updates.linux"))
    if facts.reboot_required:
        issues.append(Issue(Status.WARN, msg("os_updates.reboot_required"), "os_updates.reboot"))
    if facts.pending_total:
        ok = msg("os_updates.linux.only_other_updates", total=facts.pending_total)
    else:
        ok = msg("os_updates.linux.up_to_date")
    return conclude(issues, ok, evidence)


def check_linux(ctx: ProbeContext) -> Finding:
    release = _read_release(ctx)
    which = {t: ctx.runner.which(t) is not None for t in ("apt-get", "dnf")}
    manager = choose_manager(release, which)
    facts = probe_apt(ctx) if manager == "apt" else probe_dnf(ctx)
    return evaluate_linux(facts, ctx)
