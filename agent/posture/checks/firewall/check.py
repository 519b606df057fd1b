"""firewall: does something drop unsolicited inbound connections?

Windows: the snapshot's ``firewall`` section (HNetCfg.FwPolicy2 per profile, the current profile
bitmask, third-party SecurityCenter2 FirewallProduct entries). macOS: ``socketfilterfw
--getglobalstate``, keyed on the numeric ``(State = N)`` only. Linux: three independent sources,
any of which may be unreadable for an ordinary user: the nftables ruleset (needs CAP_NET_ADMIN),
ufw (``ufw status`` needs root; ``/etc/ufw/ufw.conf`` is world-readable) and firewalld
(``firewall-cmd --state``). One active source passes; readable sources that all say "off" fail;
nothing readable is unknown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.core.errors import ParseError, ProbeError, SourceMissing, ToolMissing
from agent.core.messages import msg
from agent.posture.context import ProbeContext
from agent.posture.dispatch import by_os
from agent.posture.model import Evidence, Finding, Status

CHECK_ID = "firewall"
UFW_CONF = "/etc/ufw/ufw.conf"
SOCKETFILTERFW = "/usr/libexec/ApplicationFirewall/socketfilterfw"
SOURCES: tuple[str, ...] = (UFW_CONF,)

# ---------------------------------------------------------------------------------------------
# Windows

# NET_FW_PROFILE_TYPE2: 1 domain, 2 private, 4 public (FwPolicy2.CurrentProfileTypes is a mask).
PROFILE_BITS: dict[str, int] = {"Domain": 1, "Private": 2, "Public": 4}
# SecurityCenter2 productState is undocumented; its middle byte is the product's state and
# 0x10 in it means "on" (0x1000 of the whole value). Layout as read by neophob.com (2010,
# "WMI query windows SecurityCenter2") and the value tables on Stack Overflow question 4700897.
WSC_STATE_ON = 0x1000


@dataclass(frozen=True)
class ThirdPartyFirewall:
    name: str
    product_state: int

    @property
    def enabled(self) -> bool:
        return bool(self.product_state & WSC_STATE_ON)


@dataclass(frozen=True)
class WindowsFirewall:
    profiles: Mapping[str, bool] | None  # Domain/Private/Public -> FirewallEnabled; None: unread
    current: tuple[str, ...]  # profile names in CurrentProfileTypes
    products: tuple[ThirdPartyFirewall, ...]
    errors: Mapping[str, str]  # sub-sources the snapshot could not read (profiles, products)


def _strict_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not an integer: {value!r}")
    return value


def _parse_profiles(section: Mapping[str, Any]) -> tuple[dict[str, bool], tuple[str, ...]]:
    what = "Windows firewall"
    raw = section.get("profiles")
    if not isinstance(raw, Mapping):
        raise ParseError(what, "no profiles")
    profiles: dict[str, bool] = {}
    for name in PROFILE_BITS:
        value = raw.get(name)
        if not isinstance(value, bool):
            raise ParseError(what, f"profile {name}: {value!r}")
        profiles[name] = value
    try:
        mask = _strict_int(section.get("current_profile_types"))
    except TypeError as exc:
        raise ParseError(what, f"current_profile_types: {exc}") from exc
    if not 1 <= mask <= 7:
        raise ParseError(what, f"current_profile_types out of range: {mask}")
    return profiles, tuple(name for name, bit in PROFILE_BITS.items() if mask & bit)


def _parse_products(raw: Any) -> tuple[ThirdPartyFirewall, ...]:
    what = "Windows firewall products"
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ParseError(what, "not a list")
    products: list[ThirdPartyFirewall] = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise ParseError(what, "product is not an object")
        try:
            state = _strict_int(item.get("productState"))
        except TypeError as exc:
            raise ParseError(what, f"productState: {exc}") from exc
        products.append(ThirdPartyFirewall(str(item.get("displayName") or "?"), state))
    return tuple(products)


def parse_windows_firewall(section: Mapping[str, Any]) -> WindowsFirewall:
    """A sub-source the snapshot could not read is null with a ``<field>_error`` sibling
    (docs/windows-snapshot.md); anything else that is not the documented shape is a ParseError."""
    errors = {k: str(section[f"{k}_error"]) for k in ("profiles", "products")
              if section.get(f"{k}_error") is not None}
    profiles: dict[str, bool] | None = None
    current: tuple[str, ...] = ()
    if not ("profiles" in errors and section.get("profiles") is None):
        profiles, current = _parse_profiles(section)
    # Server editions have no SecurityCenter2: products is null with an error, i.e. none known.
    products = _parse_products(section.get("products") or [])
    return WindowsFirewall(profiles, current, products, errors)


def evaluate_windows(fw: WindowsFirewall) -> Finding:
    evidence: Evidence = {
        "profiles": dict(fw.profiles) if fw.profiles is not None else None,
        "current_profiles": list(fw.current),
        "third_party": [{"name": p.name, "product_state": p.product_state,
                         "enabled": p.enabled} for p in fw.products]}
    if fw.errors:
        evidence["errors"] = dict(fw.errors)
    on_products = [p.name for p in fw.products if p.enabled]
    if on_products:
        # A registered third-party firewall normally switches the Windows one off on purpose.
        return Finding(Status.PASS, msg("firewall.third_party_on", name=", ".join(on_products)),
                       evidence)
    if fw.profiles is None:
        raise SourceMissing("Windows Firewall (HNetCfg.FwPolicy2)", fw.errors.get("profiles", ""))
    off = [name for name, on in fw.profiles.items() if not on]
    if not off:
        return Finding(Status.PASS, msg("firewall.windows_all_on"), evidence)
    off_current = [name for name in off if name in fw.current]
    if off_current:
        return Finding(Status.FAIL, msg("firewall.windows_current_off",
                                        profiles=", ".join(off_current)),
                       evidence, "firewall.windows")
    return Finding(Status.WARN, msg("firewall.windows_other_off", profiles=", ".join(off)),
                   evidence, "firewall.windows")


# ---------------------------------------------------------------------------------------------
# macOS

_ALF_STATE = re.compile(r"\(State = (\d+)\)")


def parse_socketfilterfw(text: str) -> int:
    """``Firewall is enabled. (State = 1)`` -> 1. The words vary by release; the number does not."""
    m = _ALF_STATE.search(text)
    if m is None:
        raise ParseError("socketfilterfw", "no '(State = N)' in output")
    state = int(m.group(1))
    if state not in (0, 1, 2):
        raise ParseError("socketfilterfw", f"unknown state {state}")
    return state


def evaluate_macos(state: int) -> Finding:
    evidence: Evidence = {"global_state": state}
    if state == 0:
        return Finding(Status.FAIL, msg("firewall.macos_off"), evidence, "firewall.macos")
    if state == 2:
        return Finding(Status.PASS, msg("firewall.macos_block_all"), evidence)
    return Finding(Status.PASS, msg("firewall.macos_on"), evidence)


# ---------------------------------------------------------------------------------------------
# Linux

ACTIVE, INACTIVE, DENIED, MISSING, ERROR = "active", "inactive", "denied", "missing", "error"
_INPUT_FAMILIES = frozenset({"ip", "ip6", "inet"})
_NEUTRAL_STATEMENTS = frozenset({"counter", "log"})  # do not make a rule conditional


@dataclass(frozen=True)
class SourceState:
    name: str  # nftables | ufw | firewalld
    state: str  # active | inactive | denied | missing | error
    detail: str = ""

    @property
    def readable(self) -> bool:
        return self.state in (ACTIVE, INACTIVE)


@dataclass(frozen=True)
class NftRuleset:
    input_chains: tuple[str, ...]  # "family table chain" of every filter base chain on input
    dropping_chains: tuple[str, ...]  # those that drop what no rule accepted


def _verdict(rule: Sequence[Any]) -> str | None:
    """The verdict of a rule that matches every packet, or None when the rule has a condition."""
    if not rule or not all(isinstance(e, Mapping) and len(e) == 1 for e in rule):
        return None
    *head, last = (next(iter(e)) for e in rule)
    if any(k not in _NEUTRAL_STATEMENTS for k in head):
        return None
    return last if last in ("accept", "drop", "reject") else None


def parse_nft_ruleset(text: str) -> NftRuleset:
    what = "nft -j list ruleset"
    try:
        data = json.loads(text)
        items = data["nftables"]
    except (ValueError, TypeError, KeyError) as exc:
        raise ParseError(what, str(exc)) from exc
    if not isinstance(items, list) or not items:
        raise ParseError(what, "no nftables list")
    chains: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[Sequence[Any]]] = {}
    for item in items:
        if not isinstance(item, Mapping):
            raise ParseError(what, "item is not an object")
        if isinstance(chain := item.get("chain"), Mapping):
            key = (str(chain.get("family")), str(chain.get("table")), str(chain.get("name")))
            chains[key] = chain
        elif isinstance(rule := item.get("rule"), Mapping):
            key = (str(rule.get("family")), str(rule.get("table")), str(rule.get("chain")))
            expr = rule.get("expr")
            rules.setdefault(key, []).append(expr if isinstance(expr, list) else [])
    inputs: list[str] = []
    dropping: list[str] = []
    for key, chain in chains.items():
        if (chain.get("type") != "filter" or chain.get("hook") != "input"
                or key[0] not in _INPUT_FAMILIES):
            continue
        label = " ".join(key)
        inputs.append(label)
        verdicts = [_verdict(r) for r in rules.get(key, [])]
        if "accept" in verdicts:  # an accept-everything rule makes any policy moot
            continue
        if chain.get("policy") == "drop" or (verdicts and verdicts[-1] in ("drop", "reject")):
            dropping.append(label)
    return NftRuleset(tuple(inputs), tuple(dropping))


def parse_ufw_conf(text: str) -> bool:
    for raw in text.splitlines():
        key, sep, value = raw.strip().partition("=")
        if sep and key.strip() == "ENABLED":
            value = value.strip().strip("\"'").lower()
            if value in ("yes", "no"):
                return value == "yes"
            raise ParseError(UFW_CONF, f"ENABLED={value}")
    raise ParseError(UFW_CONF, "no ENABLED line")


def parse_ufw_status(text: str) -> bool:
    for raw in text.splitlines():
        line = raw.strip()
        if line == "Status: active":
            return True
        if line == "Status: inactive":
            return False
    raise ParseError("ufw status", "no 'Status:' line")


def _denied(stderr: bytes) -> bool:
    low = stderr.decode("utf-8", errors="replace").lower()
    return any(s in low for s in ("operation not permitted", "permission denied",
                                  "need to be root", "not authorized"))


def probe_nftables(ctx: ProbeContext) -> SourceState:
    try:
        res = ctx.runner.run(["nft", "-j", "list", "ruleset"])
    except ToolMissing:
        return SourceState("nftables", MISSING)
    except ProbeError as exc:  # a timeout here leaves the other sources to answer
        return SourceState("nftables", ERROR, exc.detail)
    if res.returncode != 0:
        state = DENIED if _denied(res.stderr) else ERROR
        return SourceState("nftables", state, f"exit {res.returncode}")
    try:
        ruleset = parse_nft_ruleset(res.text())
    except ParseError as exc:
        return SourceState("nftables", ERROR, exc.detail)
    if ruleset.dropping_chains:
        return SourceState("nftables", ACTIVE, "dropping: " + ", ".join(ruleset.dropping_chains))
    return SourceState("nftables", INACTIVE,
                       f"{len(ruleset.input_chains)} input chain(s), none dropping")


def probe_ufw(ctx: ProbeContext) -> SourceState:
    """``ufw status`` when we may run it; otherwise the boot setting in ufw.conf."""
    status_error = ""
    try:
        res = ctx.runner.run(["ufw", "status"])
        if res.returncode == 0:
            on = parse_ufw_status(res.text())
            return SourceState("ufw", ACTIVE if on else INACTIVE, "ufw status")
        status_error = "denied" if _denied(res.stderr) else f"exit {res.returncode}"
    except ToolMissing:
        status_error = "missing"
    except ProbeError as exc:
        status_error = exc.detail
    try:
        on = parse_ufw_conf(ctx.read_text(UFW_CONF))
    except SourceMissing:
        state = MISSING if status_error == "missing" else ERROR
        return SourceState("ufw", DENIED if status_error == "denied" else state, status_error)
    except ParseError as exc:
        return SourceState("ufw", ERROR, exc.detail)
    return SourceState("ufw", ACTIVE if on else INACTIVE, UFW_CONF)


def probe_firewalld(ctx: ProbeContext) -> SourceState:
    try:
        res = ctx.runner.run(["firewall-cmd", "--state"])
    except ToolMissing:
        return SourceState("firewalld", MISSING)
    except ProbeError as exc:
        return SourceState("firewalld", ERROR, exc.detail)
    # firewalld's errors.py: NOT_RUNNING = 252; "running" is printed only with exit 0.
    if res.returncode == 0 and res.text().strip() == "running":
        return SourceState("firewalld", ACTIVE, "running")
    if res.returncode == 252:
        return SourceState("firewalld", INACTIVE, "not running")
    state = DENIED if _denied(res.stderr) else ERROR
    return SourceState("firewalld", state, f"exit {res.returncode}")


def evaluate_linux(sources: Sequence[SourceState]) -> Finding:
    evidence: Evidence = {"sources": {s.name: {"state": s.state, "detail": s.detail}
                                      for s in sources}}
    active = [s.name for s in sources if s.state == ACTIVE]
    if active:
        return Finding(Status.PASS, msg("firewall.linux_active", sources=", ".join(active)),
                       evidence)
    readable = [s.name for s in sources if s.readable]
    if readable:
        denied = [s.name for s in sources if s.state == DENIED]
        key = "firewall.linux_off_partial" if denied else "firewall.linux_off"
        return Finding(Status.FAIL, msg(key, sources=", ".join(readable)), evidence,
                       "firewall.linux")
    return Finding(Status.UNKNOWN, msg("firewall.linux_unreadable"), evidence, "firewall.unknown")


# ---------------------------------------------------------------------------------------------


def _windows(ctx: ProbeContext) -> Finding:
    return evaluate_windows(parse_windows_firewall(ctx.windows_section("firewall")))


def _macos(ctx: ProbeContext) -> Finding:
    res = ctx.runner.run([SOCKETFILTERFW, "--getglobalstate"]).check()
    return evaluate_macos(parse_socketfilterfw(res.text()))


def _linux(ctx: ProbeContext) -> Finding:
    return evaluate_linux([probe_nftables(ctx), probe_ufw(ctx), probe_firewalld(ctx)])


def check(ctx: ProbeContext) -> Finding:
    return by_os(ctx, CHECK_ID, windows=_windows, macos=_macos, linux=_linux)
