"""firewall on Linux: nftables ruleset, ufw, firewalld; probes (I/O) and pure parsers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.core.errors import ParseError, ProbeError, SourceMissing, ToolMissing
from agent.core.messages import msg
from agent.posture.context import ProbeContext
from agent.posture.model import Evidence, Finding, Status

CHECK_ID = "firewall"
UFW_CONF = "/etc/ufw/ufw.conf"
SOURCES: tuple[str, ...] = (UFW_CONF,)


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


def check_linux(ctx: ProbeContext) -> Finding:
    return evaluate_linux([probe_nftables(ctx), probe_ufw(ctx), probe_firewalld(ctx)])
