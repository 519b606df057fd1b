"""Pure parsers for the antivirus check: Security Center, Defender, mdatp, XProtect, spctl.

Windows ``root\\SecurityCenter2 AntiVirusProduct.productState`` is decoded by the one decoder
in agent/posture/security_center.py, shared with the firewall check.
"""

from __future__ import annotations

import json
import plistlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.parsers.expat import ExpatError

from agent.core.errors import ParseError
from agent.posture.security_center import ProductState, corroboration, decode_product_state


@dataclass(frozen=True)
class SecurityCenterProduct:
    name: str
    state: ProductState
    path: str
    timestamp: str
    program: str = "unchecked"  # present | missing | unchecked (security_center.corroboration)

    @property
    def is_defender(self) -> bool:
        return self.state.microsoft or self.path.lower().startswith("windowsdefender:")


@dataclass(frozen=True)
class DefenderStatus:
    running_mode: str  # Normal | Passive Mode | SxS Passive Mode | EDR Block Mode | Not running
    antivirus_enabled: bool
    real_time: bool
    signature_version: str
    signature_updated: datetime | None
    signature_age_days: int | None
    product_version: str

    @property
    def active(self) -> bool:
        return self.running_mode.strip().lower() == "normal"


@dataclass(frozen=True)
class MdatpHealth:
    healthy: bool | None
    app_version: str
    definitions_version: str
    definitions_status: str
    definitions_updated: datetime | None
    minutes_ago: int | None
    real_time: bool | None
    passive: bool | None


@dataclass(frozen=True)
class XProtectBundle:
    location: str
    version: str


def _unavailable(value: object) -> bool:
    return value is None or (isinstance(value, Mapping) and "error" in value)


def parse_security_center(section: Mapping[str, Any]) -> list[SecurityCenterProduct] | None:
    """The products Security Center knows; None when the namespace is absent (Windows Server)."""
    value = section.get("products")
    if _unavailable(value):
        return None
    if isinstance(value, Mapping):  # PowerShell turns a one-item array into an object
        value = [value]
    if not isinstance(value, list):
        raise ParseError("SecurityCenter2 AntiVirusProduct", f"not a list: {type(value).__name__}")
    out = []
    for item in value:
        if not isinstance(item, Mapping) or not isinstance(item.get("displayName"), str):
            raise ParseError("SecurityCenter2 AntiVirusProduct", "entry without displayName")
        out.append(SecurityCenterProduct(item["displayName"],
                                         decode_product_state(item.get("productState")),
                                         str(item.get("pathToSignedProductExe") or ""),
                                         str(item.get("timestamp") or ""),
                                         corroboration(item)))
    return out


def _iso(value: object, what: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise ParseError(what, repr(value)[:60]) from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _bool(value: object, what: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ParseError(what, f"not a boolean: {value!r}"[:80])


def parse_defender(section: Mapping[str, Any]) -> DefenderStatus | None:
    """MSFT_MpComputerStatus; None when Defender's namespace is absent or failed."""
    d = section.get("defender")
    if _unavailable(d):
        return None
    if not isinstance(d, Mapping) or not isinstance(d.get("AMRunningMode"), str):
        raise ParseError("MSFT_MpComputerStatus", "no AMRunningMode")
    age = d.get("AntivirusSignatureAge")
    if age is not None and (isinstance(age, bool) or not isinstance(age, int)):
        raise ParseError("MSFT_MpComputerStatus", f"AntivirusSignatureAge {age!r}"[:80])
    return DefenderStatus(
        d["AMRunningMode"],
        _bool(d.get("AntivirusEnabled"), "MSFT_MpComputerStatus AntivirusEnabled"),
        _bool(d.get("RealTimeProtectionEnabled"),
              "MSFT_MpComputerStatus RealTimeProtectionEnabled"),
        str(d.get("AntivirusSignatureVersion") or ""),
        _iso(d.get("AntivirusSignatureLastUpdated"), "AntivirusSignatureLastUpdated"),
        age,
        str(d.get("AMProductVersion") or ""),
    )


def _value(obj: object) -> object:
    """mdatp wraps settings as {"value": x, ...} and enums as {"$type": "..."}."""
    if isinstance(obj, Mapping):
        return obj.get("value", obj.get("$type"))
    return obj


def parse_mdatp_health(text: str) -> MdatpHealth:
    """``mdatp health --output json`` (Defender for Endpoint on Linux and macOS).

    Field names as used by Microsoft's own PowerShell-DSC-for-Linux antimalware plugin and
    glpi-agent's macOS Defender module: definitionsUpdated is milliseconds since the epoch, as a
    string; definitionsStatus is {"$type": "upToDate"}; realTimeProtectionEnabled is {"value": b}.
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ParseError("mdatp health", str(exc)) from exc
    if not isinstance(data, dict) or "appVersion" not in data:
        raise ParseError("mdatp health", "not a health report")

    def opt_bool(key: str) -> bool | None:
        v = _value(data.get(key))
        return v if isinstance(v, bool) else None

    updated: datetime | None = None
    raw = _value(data.get("definitionsUpdated"))
    if isinstance(raw, (int, str)) and str(raw).isdigit() and int(raw) > 0:
        updated = datetime.fromtimestamp(int(raw) / 1000, UTC)
    ago = _value(data.get("definitionsUpdatedMinutesAgo"))
    minutes = int(ago) if isinstance(ago, (int, str)) and str(ago).isdigit() else None
    return MdatpHealth(opt_bool("healthy"), str(_value(data.get("appVersion")) or ""),
                       str(_value(data.get("definitionsVersion")) or ""),
                       str(_value(data.get("definitionsStatus")) or ""), updated, minutes,
                       opt_bool("realTimeProtectionEnabled"), opt_bool("passiveModeEnabled"))


def parse_xprotect_plist(data: bytes, location: str) -> XProtectBundle:
    try:
        plist = plistlib.loads(data)
        version = str(plist.get("CFBundleShortVersionString") or plist["CFBundleVersion"])
    except (plistlib.InvalidFileException, ExpatError, KeyError, ValueError, TypeError,
            AttributeError, IndexError) as exc:
        raise ParseError(location, str(exc) or type(exc).__name__) from exc
    if not version.isdigit():
        raise ParseError(location, f"XProtect version {version[:20]!r}")
    return XProtectBundle(location, version)


def parse_spctl_status(text: str) -> bool:
    """``spctl --status``: a fixed English line from the tool, not localized."""
    line = text.strip()
    if line == "assessments enabled":
        return True
    if line == "assessments disabled":
        return False
    raise ParseError("spctl --status", line[:80] or "empty output")
