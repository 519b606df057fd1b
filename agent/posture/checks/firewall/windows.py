"""firewall on Windows: the snapshot's ``firewall`` section (FwPolicy2 per profile, the current
profile mask, third-party SecurityCenter2 FirewallProduct entries); I/O in ``check_windows``,
the rest pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.core.errors import ParseError, SourceMissing
from agent.core.messages import msg
from agent.posture.context import ProbeContext
from agent.posture.model import Evidence, Finding, Status
from agent.posture.security_center import corroboration, decode_product_state

CHECK_ID = "firewall"


# NET_FW_PROFILE_TYPE2: 1 domain, 2 private, 4 public (FwPolicy2.CurrentProfileTypes is a mask).
PROFILE_BITS: dict[str, int] = {"Domain": 1, "Private": 2, "Public": 4}


@dataclass(frozen=True)
class ThirdPartyFirewall:
    """A SecurityCenter2 FirewallProduct, decoded like every Security Center product
    (agent/posture/security_center.py: 0x1000 on, 0x3000 expired, 0x2000 snoozed)."""

    name: str
    product_state: int
    program: str = "unchecked"  # present | missing | unchecked

    @property
    def state(self) -> str:
        return decode_product_state(self.product_state).state

    @property
    def enabled(self) -> bool:
        return decode_product_state(self.product_state).enabled


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
        decode_product_state(state)  # out of range is a ParseError here, not later
        products.append(ThirdPartyFirewall(str(item.get("displayName") or "?"), state,
                                           corroboration(item)))
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
                         "product_state_hex": f"0x{p.product_state:06X}", "state": p.state,
                         "enabled": p.enabled, "program": p.program} for p in fw.products]}
    if fw.errors:
        evidence["errors"] = dict(fw.errors)
    # A registered third-party firewall normally switches the Windows one off on purpose; only
    # one whose program is still there counts (Security Center keeps uninstalled products).
    on_products = [p.name for p in fw.products if p.enabled and p.program == "present"]
    if on_products:
        return Finding(Status.PASS, msg("firewall.third_party_on", name=", ".join(on_products)),
                       evidence)
    if fw.profiles is None:
        raise SourceMissing("Windows Firewall (HNetCfg.FwPolicy2)", fw.errors.get("profiles", ""))
    off = [name for name, on in fw.profiles.items() if not on]
    if not off:
        return Finding(Status.PASS, msg("firewall.windows_all_on"), evidence)
    off_current = [name for name in off if name in fw.current]
    unverified = [p for p in fw.products if p.enabled and p.program != "present"]
    if off_current and unverified:
        p = unverified[0]
        return Finding(Status.UNKNOWN, msg(f"firewall.third_party_{p.program}", name=p.name,
                                           profiles=", ".join(off_current)),
                       evidence, "firewall.windows")
    if off_current:
        return Finding(Status.FAIL, msg("firewall.windows_current_off",
                                        profiles=", ".join(off_current)),
                       evidence, "firewall.windows")
    return Finding(Status.WARN, msg("firewall.windows_other_off", profiles=", ".join(off)),
                   evidence, "firewall.windows")


def check_windows(ctx: ProbeContext) -> Finding:
    return evaluate_windows(parse_windows_firewall(ctx.windows_section("firewall")))
