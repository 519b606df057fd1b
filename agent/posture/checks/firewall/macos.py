"""firewall on macOS: ``socketfilterfw --getglobalstate``, keyed on the numeric state only."""

from __future__ import annotations

import re

from agent.core.errors import ParseError
from agent.core.messages import msg
from agent.posture.context import ProbeContext
from agent.posture.model import Evidence, Finding, Status

CHECK_ID = "firewall"
SOCKETFILTERFW = "/usr/libexec/ApplicationFirewall/socketfilterfw"


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


def check_macos(ctx: ProbeContext) -> Finding:
    res = ctx.runner.run([SOCKETFILTERFW, "--getglobalstate"]).check()
    return evaluate_macos(parse_socketfilterfw(res.text()))
