"""Windows Security Center (root\\SecurityCenter2): one decoder for every product kind.

``productState`` of AntiVirusProduct, FirewallProduct and AntiSpywareProduct is undocumented; its
layout is reverse-engineered and agrees across sources (Idera PowerTips "Identifying Antivirus
Engine State", 2020; neophob.com "WMI query Windows SecurityCenter2", 2010; the value survey in
Stack Overflow question 4700897): bits 12-15 the product state (0 off, 1 on, 2 snoozed,
3 expired), bits 8-11 the owner (1 = Windows itself), bits 4-7 the signature status (0 up to
date, 1 out of date; meaningless for a firewall), bits 16-23 the WSC_SECURITY_PROVIDER flags
(1 firewall, 4 antivirus, 8 antispyware ...). So 0x3000 is *expired*, not "on": a test of the
0x1000 bit alone (the firewall check's old decoder) calls an expired product on.

Security Center keeps a product's entry after the product is uninstalled, often still saying
"on". The snapshot therefore says for each product whether the program it names exists
(``exe_exists``); a product whose program is missing, or whose existence could not be checked,
never makes a PC pass on its own (``corroborated``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.core.errors import ParseError

PRODUCT_STATES = {0: "off", 1: "on", 2: "snoozed", 3: "expired"}


@dataclass(frozen=True)
class ProductState:
    raw: int
    state: str  # off | on | snoozed | expired | unknown(<n>)
    microsoft: bool  # owner nibble says Windows: the Defender entry
    up_to_date: bool

    @property
    def enabled(self) -> bool:
        return self.state == "on"


def decode_product_state(value: object) -> ProductState:
    if isinstance(value, bool):
        raise ParseError("SecurityCenter2 productState", repr(value))
    try:
        raw = int(str(value), 0) if isinstance(value, str) else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise ParseError("SecurityCenter2 productState", repr(value)[:40]) from exc
    if raw < 0 or raw > 0xFFFFFF:
        raise ParseError("SecurityCenter2 productState", str(raw))
    nibble = (raw >> 12) & 0xF
    return ProductState(raw, PRODUCT_STATES.get(nibble, f"unknown({nibble})"),
                        (raw >> 8) & 0xF == 1, (raw >> 4) & 0xF == 0)


def exe_exists(item: Mapping[str, Any]) -> bool | None:
    """The snapshot's check of the product's program: True, False, or None (not checked)."""
    value = item.get("exe_exists")
    return value if isinstance(value, bool) else None


def corroboration(item: Mapping[str, Any]) -> str:
    """present | missing (probably uninstalled: a stale entry) | unchecked."""
    found = exe_exists(item)
    return "unchecked" if found is None else ("present" if found else "missing")
