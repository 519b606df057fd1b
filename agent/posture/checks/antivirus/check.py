"""antivirus: is a virus scanner running, and are its signatures recent?

Each product found becomes a verdict; the PC passes when one product protects it (on, with
signatures no older than the policy allows). A running product whose signature age cannot be read
is ``unknown``; no product at all fails.

Windows: the snapshot's ``antivirus`` section: Security Center's AntiVirusProduct list (bit fields
decoded in antivirus_parsers) and Defender's MSFT_MpComputerStatus (running mode, signature date).
Defender in any passive mode is not the active scanner.
macOS: the XProtect bundle (macOS 15+ location first, then the older one), dated by the mtime of its
Info.plist, Gatekeeper ``spctl --status``, and third-party scanners by process name.
Linux: known scanner daemons in the process list; clamd is asked over its socket (``zVERSION``),
falling back to ``clamdscan --version``; Defender for Endpoint through ``mdatp health``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from agent.core.errors import ProbeError, SourceMissing
from agent.core.messages import Message, msg
from agent.posture.checks.antivirus import clamd
from agent.posture.checks.antivirus.parsers import (
    DefenderStatus,
    SecurityCenterProduct,
    XProtectBundle,
    parse_defender,
    parse_mdatp_health,
    parse_security_center,
    parse_spctl_status,
    parse_xprotect_plist,
)
from agent.posture.context import ProbeContext, ProcInfo
from agent.posture.dispatch import by_os
from agent.posture.model import Evidence, Finding, Status

CHECK_ID = "antivirus"
XPROTECT_NEW = "/private/var/protected/xprotect/XProtect.bundle/Contents/Info.plist"  # macOS 15+
XPROTECT_OLD = "/Library/Apple/System/Library/CoreServices/XProtect.bundle/Contents/Info.plist"
SOURCES: tuple[str, ...] = (clamd.DEFAULT_CONFIG, XPROTECT_NEW, XPROTECT_OLD)
CLAMD_TIMEOUT_S = 3.0  # clamd answers VERSION in well under a second, even while scanning

# Among failures, the one that explains the PC best is shown: an old scanner, then one turned off,
# then a Defender that stands aside for a product that is not there.
STALE, OFF, INACTIVE = 0, 1, 2

NO_SIGNATURES = 65535  # AntivirusSignatureAge when Defender has no signatures at all
MDATP = "Microsoft Defender for Endpoint"
# Scanner daemons whose signature age we cannot read: (product, process names, install prefixes).
# Names as the vendors' Linux agents ship them; a match makes the check unknown, never pass.
LINUX_OTHERS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("Sophos", ("savd", "sophos_threat_detector", "soapd"),
     ("/opt/sophos-av/", "/opt/sophos-spl/")),
    ("ESET", ("esets_daemon",), ("/opt/eset/",)),
    ("Trend Micro", ("ds_agent", "ds_am"), ("/opt/ds_agent/",)),
    ("Kaspersky", ("kesl",), ("/opt/kaspersky/",)),
    ("Trellix", ("mfetpd", "isectpd"), ("/opt/McAfee/", "/opt/isec/")),
    ("Bitdefender", ("bdsecd",), ("/opt/bitdefender-security-tools/",)),
    ("F-Secure", ("fsavd", "fsaccd"), ("/opt/f-secure/",)),
    ("CrowdStrike Falcon", ("falcon-sensor",), ("/opt/CrowdStrike/",)),
    ("SentinelOne", ("sentinelone-agent", "s1-agent"), ("/opt/sentinelone/",)),
)
MAC_OTHERS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("Sophos", ("SophosScanD",), ("/Library/Sophos Anti-Virus/",)),
    ("ESET", ("esets_daemon",), ("/Applications/ESET",)),
    ("Trend Micro", ("iCoreService",), ("/Library/Application Support/TrendMicro/",)),
    ("Kaspersky", ("kav",), ("/Library/Application Support/Kaspersky Lab/",)),
)


@dataclass(frozen=True)
class Verdict:
    product: str
    status: Status
    summary: Message
    evidence: Evidence = field(default_factory=dict)
    remediation: str | None = None
    rank: int = STALE


def combine(verdicts: Sequence[Verdict], none_remediation: str,
            extra: Evidence | None = None) -> Finding:
    evidence: Evidence = {"products": [v.evidence for v in verdicts], **(extra or {})}
    if not verdicts:
        return Finding(Status.FAIL, msg("antivirus.none"), evidence, none_remediation)
    for v in verdicts:
        if v.status is Status.PASS:
            evidence["protected_by"] = v.product
            return Finding(Status.PASS, v.summary, evidence)
    for v in verdicts:
        if v.status is Status.UNKNOWN:
            return Finding(Status.UNKNOWN, v.summary, evidence, f"{CHECK_ID}.unknown")
    worst = min(verdicts, key=lambda v: v.rank)
    return Finding(Status.FAIL, worst.summary, evidence, worst.remediation)


def _judge_age(product: str, age: int | None, day: str, *, max_days: int, ev: Evidence,
               stale_remediation: str) -> Verdict:
    ev.update(signature_date=day, signature_age_days=age, max_age_days=max_days)
    if age is None:
        return Verdict(product, Status.UNKNOWN,
                       msg("antivirus.date_in_future", product=product, date=day), ev)
    if age > max_days:
        return Verdict(product, Status.FAIL, msg("antivirus.stale", product=product, date=day,
                                                 age=age, max=max_days), ev, stale_remediation)
    return Verdict(product, Status.PASS, msg("antivirus.ok", product=product, date=day, age=age),
                   ev)


def _age_since(now: datetime, when: datetime) -> int | None:
    """Whole days since ``when``; None when it lies more than a day ahead (a wrong clock)."""
    delta = now - when
    if delta < -timedelta(days=1):
        return None
    return max(0, delta.days)


def _dated(product: str, when: datetime, ctx: ProbeContext, *, max_days: int, ev: Evidence,
           stale_remediation: str) -> Verdict:
    return _judge_age(product, _age_since(ctx.now, when), when.date().isoformat(),
                      max_days=max_days, ev=ev, stale_remediation=stale_remediation)


def _unreadable(product: str, ev: Evidence) -> Verdict:
    return Verdict(product, Status.UNKNOWN, msg("antivirus.age_unreadable", product=product), ev)


def _guarded(product: str, ev: Evidence, fn: Callable[[], Verdict]) -> Verdict:
    """A product that cannot be read is unknown without hiding another product that protects."""
    try:
        return fn()
    except ProbeError as exc:
        ev["error"] = exc.detail
        return Verdict(product, Status.UNKNOWN, exc.message, ev)


def _names(p: ProcInfo) -> set[str]:
    names = {p.name, os.path.basename(p.exe)}
    if p.cmdline:
        names.add(os.path.basename(p.cmdline[0]))
    return names - {""}


def _matches(p: ProcInfo, names: Iterable[str], prefixes: Iterable[str] = ()) -> bool:
    return bool(_names(p) & set(names)) or any(p.exe.startswith(x) for x in prefixes if p.exe)


def _others(procs: Sequence[ProcInfo],
            table: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]) -> list[Verdict]:
    out = []
    for product, names, prefixes in table:
        hit = next((p for p in procs if _matches(p, names, prefixes)), None)
        if hit is not None:
            out.append(_unreadable(product, {"product": product, "pid": hit.pid,
                                             "process": hit.name}))
    return out


# Linux ----------------------------------------------------------------------------------------


def _clamd(ctx: ProbeContext, proc: ProcInfo, on_access: bool) -> Verdict:
    ev: Evidence = {"product": "ClamAV", "pid": proc.pid, "on_access": on_access}
    given = clamd.config_path_from_cmdline(proc.cmdline)
    conf = given or clamd.DEFAULT_CONFIG
    ev["config"] = conf
    errors: list[str] = []
    try:
        if not conf.startswith("/"):
            raise SourceMissing(conf, "relative path in the clamd command line")
        address = clamd.parse_config(ctx.read_text(conf), conf)
        ev["socket"] = str(address)
        unix = str(ctx.path(address.path)) if address.kind == "unix" else None
        timeout = min(CLAMD_TIMEOUT_S, ctx.settings.probe_timeout_s)
        version = clamd.parse_version_reply(clamd.query_version(address, timeout, unix))
        ev["source"] = "socket"
    except ProbeError as first:
        errors.append(first.detail)
        argv = ["clamdscan", "--version"] + ([f"--config-file={given}"] if given else [])
        try:
            version = clamd.parse_version_reply(ctx.runner.run(argv).check().text())
            ev["source"] = "clamdscan"
        except ProbeError as second:
            ev["errors"] = [*errors, second.detail]
            return Verdict("ClamAV", Status.UNKNOWN, first.message, ev)
        ev["socket_error"] = first.detail
    ev.update(version=version.engine, database_version=version.db_version)
    if version.db_date is None:
        return _unreadable("ClamAV", ev)
    when = version.db_date.astimezone()  # ctime() printed the daemon's local time
    ev["database_date"] = when.isoformat()
    return _dated("ClamAV", when, ctx, max_days=ctx.settings.max_av_signature_age_days, ev=ev,
                  stale_remediation=f"{CHECK_ID}.linux_update")


def _mdatp(ctx: ProbeContext, pid: int, stale_remediation: str) -> Verdict:
    ev: Evidence = {"product": MDATP, "pid": pid}

    def probe() -> Verdict:
        h = parse_mdatp_health(ctx.runner.run(["mdatp", "health", "--output", "json"])
                               .check().text())
        ev.update(version=h.app_version, definitions_version=h.definitions_version,
                  definitions_status=h.definitions_status, real_time=h.real_time,
                  passive=h.passive, healthy=h.healthy)
        if h.passive or h.real_time is False:
            return Verdict(MDATP, Status.FAIL, msg("antivirus.off", product=MDATP), ev,
                           stale_remediation, OFF)
        when = h.definitions_updated
        if when is None and h.minutes_ago is not None:
            when = ctx.now - timedelta(minutes=h.minutes_ago)
        if when is None:
            return _unreadable(MDATP, ev)
        return _dated(MDATP, when, ctx, max_days=ctx.settings.max_av_signature_age_days,
                      ev=ev, stale_remediation=stale_remediation)

    return _guarded(MDATP, ev, probe)


def _linux(ctx: ProbeContext) -> Finding:
    procs = ctx.processes()
    on_access = any(_matches(p, ("clamonacc",)) for p in procs)
    verdicts = [_clamd(ctx, p, on_access) for p in procs if _matches(p, ("clamd",))]
    wdav = next((p for p in procs if _matches(p, ("wdavdaemon",))), None)
    if wdav is not None:
        verdicts.append(_mdatp(ctx, wdav.pid, f"{CHECK_ID}.linux_update"))
    verdicts += _others(procs, LINUX_OTHERS)
    return combine(verdicts, f"{CHECK_ID}.linux")


# Windows --------------------------------------------------------------------------------------


def _defender(d: DefenderStatus, ctx: ProbeContext) -> Verdict:
    product = "Microsoft Defender"
    ev: Evidence = {"product": product, "source": "MSFT_MpComputerStatus",
                    "running_mode": d.running_mode, "antivirus_enabled": d.antivirus_enabled,
                    "real_time": d.real_time, "signature_version": d.signature_version,
                    "product_version": d.product_version}
    if not d.active:
        return Verdict(product, Status.FAIL, msg("antivirus.defender_not_active",
                                                 mode=d.running_mode), ev,
                       f"{CHECK_ID}.windows", INACTIVE)
    if not (d.antivirus_enabled and d.real_time):
        return Verdict(product, Status.FAIL, msg("antivirus.off", product=product), ev,
                       f"{CHECK_ID}.windows", OFF)
    max_days = ctx.settings.max_av_signature_age_days
    update = f"{CHECK_ID}.windows_update"
    if d.signature_updated is not None:
        return _dated(product, d.signature_updated, ctx, max_days=max_days, ev=ev,
                      stale_remediation=update)
    if d.signature_age_days is not None and d.signature_age_days >= NO_SIGNATURES:
        return Verdict(product, Status.FAIL, msg("antivirus.stale_no_date", product=product), ev,
                       update, STALE)
    if d.signature_age_days is not None:
        day = (ctx.now - timedelta(days=d.signature_age_days)).date().isoformat()
        return _judge_age(product, d.signature_age_days, day, max_days=max_days, ev=ev,
                          stale_remediation=update)
    return _unreadable(product, ev)


def _security_center(p: SecurityCenterProduct) -> Verdict:
    ev: Evidence = {"product": p.name, "source": "SecurityCenter2",
                    "product_state": p.state.raw, "product_state_hex": f"0x{p.state.raw:06X}",
                    "state": p.state.state, "signatures_up_to_date": p.state.up_to_date,
                    "timestamp": p.timestamp}
    if not p.state.enabled:
        return Verdict(p.name, Status.FAIL, msg("antivirus.off", product=p.name), ev,
                       f"{CHECK_ID}.windows", OFF)
    if not p.state.up_to_date:
        return Verdict(p.name, Status.FAIL, msg("antivirus.stale_no_date", product=p.name), ev,
                       f"{CHECK_ID}.windows_update", STALE)
    if p.is_defender:  # Defender must also meet the age limit, and its own status is missing
        return _unreadable(p.name, ev)
    ev["program"] = p.program
    if p.program != "present":
        # Security Center keeps entries of uninstalled products: one alone never passes.
        return Verdict(p.name, Status.UNKNOWN, msg(f"antivirus.sc_program_{p.program}",
                                                   product=p.name, path=p.path or "?"), ev)
    return Verdict(p.name, Status.PASS, msg("antivirus.ok_no_date", product=p.name), ev)


def _windows(ctx: ProbeContext) -> Finding:
    section = ctx.windows_section("antivirus")
    verdicts: list[Verdict] = []
    # A source that cannot be parsed is an unknown verdict, so the other source can still pass.
    try:
        products = parse_security_center(section)
    except ProbeError as exc:
        products = []
        verdicts.append(Verdict("Security Center", Status.UNKNOWN, exc.message,
                                {"product": "Security Center", "error": exc.detail}))
    defender_unreadable = False
    try:
        defender = parse_defender(section)
    except ProbeError as exc:
        defender, defender_unreadable = None, True
        verdicts.append(Verdict("Microsoft Defender", Status.UNKNOWN, exc.message,
                                {"product": "Microsoft Defender", "error": exc.detail}))
    if products is None and defender is None and not defender_unreadable:
        why = section.get("products_error") or section.get("products")
        raise SourceMissing("Windows Security Center / Microsoft Defender",
                            f"{why!r} {section.get('defender')!r}"[:200])
    if defender is not None:
        verdicts.insert(0, _defender(defender, ctx))
    for p in products or ():
        if p.is_defender and (defender is not None or defender_unreadable):
            continue  # MSFT_MpComputerStatus says more, and carries the date
        verdicts.append(_security_center(p))
    extra: Evidence = {"security_center": products is not None,
                       "defender_status": defender is not None}
    return combine(verdicts, f"{CHECK_ID}.windows", extra)


# macOS ----------------------------------------------------------------------------------------


class XProtectUnreadable(SourceMissing):
    """XProtect's data exists but this user may not read it (macOS 15+ keeps it under
    /private/var/protected/xprotect, which some releases close to ordinary users)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(where, reason)
        self.message = msg("antivirus.xprotect_unreadable", path=where, reason=reason)


def _xprotect(ctx: ProbeContext, denied: dict[str, str]) -> list[tuple[XProtectBundle, datetime]]:
    """Both locations, newest (macOS 15+) first. A location this user cannot read is noted in
    ``denied`` and skipped; when nothing is readable the reason names the protected path."""
    found = []
    for location in (XPROTECT_NEW, XPROTECT_OLD):
        path = ctx.path(location)
        try:
            data = path.read_bytes()
            modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except FileNotFoundError:
            continue
        except OSError as exc:
            denied[location] = exc.strerror or type(exc).__name__
            continue
        found.append((parse_xprotect_plist(data, location), modified))
    if not found:
        if denied:
            where, reason = next(iter(denied.items()))
            raise XProtectUnreadable(where, reason)
        raise SourceMissing("XProtect.bundle", "in neither location")
    return found


def _macos(ctx: ProbeContext) -> Finding:
    denied: dict[str, str] = {}
    bundles = _xprotect(ctx, denied)
    # spctl exits 1 when assessments are disabled; the text decides.
    gatekeeper = parse_spctl_status(ctx.runner.run(["spctl", "--status"]).check(0, 1).text())
    bundle, modified = bundles[0]  # macOS 15+ scans with the new location's rules when present
    ev: Evidence = {"product": "XProtect", "version": bundle.version,
                    "location": bundle.location, "date_source": "Info.plist mtime"}
    verdicts = [_dated("XProtect", modified, ctx, max_days=ctx.settings.max_xprotect_age_days,
                       ev=ev, stale_remediation=f"{CHECK_ID}.macos")]
    procs = ctx.processes()
    wdav = next((p for p in procs if _matches(p, ("wdavdaemon",))), None)
    if wdav is not None:
        verdicts.append(_mdatp(ctx, wdav.pid, f"{CHECK_ID}.macos"))
    verdicts += _others(procs, MAC_OTHERS)
    extra: Evidence = {"gatekeeper": gatekeeper, "xprotect_bundles": [
        {"location": b.location, "version": b.version, "modified": m.isoformat()}
        for b, m in bundles]}
    if denied:  # e.g. the macOS 15+ location closed to this user: the older copy was used
        extra["xprotect_unreadable"] = denied
    finding = combine(verdicts, f"{CHECK_ID}.macos", extra)
    if finding.status is Status.PASS and not gatekeeper:
        return Finding(Status.FAIL, msg("antivirus.gatekeeper_off"), finding.evidence,
                       f"{CHECK_ID}.gatekeeper")
    return finding


def check(ctx: ProbeContext) -> Finding:
    return by_os(ctx, CHECK_ID, windows=_windows, macos=_macos, linux=_linux)
