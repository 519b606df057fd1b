"""disk_encryption on Windows: the snapshot's ``bitlocker`` section (Shell property, WMI when
elevated); I/O in ``check_windows``, the rest pure. Sources in check.py's docstring.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from agent.core.errors import ParseError
from agent.core.messages import msg
from agent.posture.context import ProbeContext
from agent.posture.model import Evidence, Finding, Status

CHECK_ID = "disk_encryption"


class Bde(StrEnum):
    ON = "on"
    OFF = "off"
    ENCRYPTING = "encrypting"
    DECRYPTING = "decrypting"
    SUSPENDED = "suspended"
    WAITING_ACTIVATION = "waiting_activation"
    NOT_AVAILABLE = "not_available"
    UNKNOWN = "unknown"


# System.Volume.BitLockerProtection (see the module docstring for sources).
_SHELL_VALUES: Mapping[int, Bde] = {
    0: Bde.NOT_AVAILABLE, 1: Bde.ON, 2: Bde.OFF, 3: Bde.ENCRYPTING, 4: Bde.DECRYPTING,
    5: Bde.SUSPENDED, 6: Bde.ON, 8: Bde.WAITING_ACTIVATION,
}
_FAILING = (Bde.OFF, Bde.DECRYPTING, Bde.SUSPENDED, Bde.WAITING_ACTIVATION, Bde.NOT_AVAILABLE)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def shell_state(value: Any) -> Bde:
    if value is None:
        return Bde.NOT_AVAILABLE
    number = _as_int(value)
    return _SHELL_VALUES.get(number, Bde.UNKNOWN) if number is not None else Bde.UNKNOWN


def wmi_state(volume: Mapping[str, Any]) -> Bde:
    """Win32_EncryptableVolume: ConversionStatus says how much is encrypted, ProtectionStatus
    whether the key is protected (0 on a fully encrypted volume = suspended or clear key)."""
    conversion = _as_int(volume.get("ConversionStatus"))
    protection = _as_int(volume.get("ProtectionStatus"))
    if conversion == 0:
        return Bde.OFF
    if conversion in (2, 4):
        return Bde.ENCRYPTING
    if conversion in (3, 5):
        return Bde.DECRYPTING
    if conversion == 1:
        if protection is None:
            return Bde.UNKNOWN
        return {0: Bde.SUSPENDED, 1: Bde.ON, 2: Bde.ON}.get(protection, Bde.UNKNOWN)
    return Bde.UNKNOWN


def _drive(value: Any) -> str:
    text = str(value or "").strip().rstrip("\\").upper()
    if not re.fullmatch(r"[A-Z]:", text):
        raise ParseError("Windows bitlocker", f"bad drive {value!r}")
    return text


def _wmi_volumes(raw: Any) -> dict[str, Mapping[str, Any]] | None:
    if isinstance(raw, Mapping) and "DriveLetter" in raw:
        raw = [raw]  # ConvertTo-Json unwraps a one-element array
    if not isinstance(raw, list):
        return None
    out: dict[str, Mapping[str, Any]] = {}
    for vol in raw:
        if isinstance(vol, Mapping) and vol.get("DriveLetter"):
            out[str(vol["DriveLetter"]).strip().upper()] = vol
    return out


@dataclass(frozen=True)
class DriveFacts:
    drive: str
    state: Bde
    source: str  # shell | wmi
    shell_value: Any
    wmi: Mapping[str, Any] | None


# \\SERVER\SHARE (a roaming or redirected profile on a file server), as GetPathRoot gives it.
_UNC_ROOT = re.compile(r"^\\\\[^\\/]+\\[^\\/]+\\?$")


def network_profile(section: Mapping[str, Any]) -> str | None:
    """The UNC root of a profile that lives on a file server, or None for a local drive."""
    value = str(section.get("profile_drive") or "").strip()
    return value.rstrip("\\") if _UNC_ROOT.match(value) else None


def parse_windows_bitlocker(section: Mapping[str, Any]) -> list[DriveFacts]:
    """Decision for a roaming (UNC) profile: only local volumes can be BitLocker volumes, and
    Windows keeps the local copy of a roaming profile under the system drive, so the system
    drive is judged alone; the share is the file server's business (docs/windows-snapshot.md)."""
    drives = [_drive(section.get("system_drive"))]
    if network_profile(section) is None:
        profile = _drive(section.get("profile_drive") or drives[0])
        if profile not in drives:
            drives.append(profile)
    shell = section.get("shell_protection")
    if not isinstance(shell, Mapping):
        raise ParseError("Windows bitlocker", "shell_protection missing")
    shell_upper = {str(k).strip().rstrip("\\").upper(): v for k, v in shell.items()}
    wmi = _wmi_volumes(section.get("wmi"))
    facts = []
    for d in drives:
        value = shell_upper.get(d, "<missing>")
        s_state = shell_state(value) if d in shell_upper else Bde.UNKNOWN
        vol = (wmi or {}).get(d)
        if vol is not None:
            w_state = wmi_state(vol)
            # WMI cannot tell a clear-key "waiting for activation" volume from a suspended one.
            if w_state is Bde.SUSPENDED and s_state is Bde.WAITING_ACTIVATION:
                w_state = s_state
            facts.append(DriveFacts(d, w_state, "wmi", value, dict(vol)))
        else:
            facts.append(DriveFacts(d, s_state, "shell", value, None))
    return facts


_WIN_MESSAGES: Mapping[Bde, tuple[Status, str, str | None]] = {
    Bde.OFF: (Status.FAIL, "disk_encryption.windows.off", "disk_encryption.windows"),
    Bde.NOT_AVAILABLE: (Status.FAIL, "disk_encryption.windows.not_available",
                        "disk_encryption.windows"),
    Bde.WAITING_ACTIVATION: (Status.FAIL, "disk_encryption.windows.waiting_activation",
                             "disk_encryption.windows"),
    Bde.DECRYPTING: (Status.FAIL, "disk_encryption.windows.decrypting",
                     "disk_encryption.windows"),
    Bde.SUSPENDED: (Status.FAIL, "disk_encryption.windows.suspended",
                    "disk_encryption.windows.suspended"),
    Bde.UNKNOWN: (Status.UNKNOWN, "disk_encryption.windows.unknown_value",
                  f"{CHECK_ID}.unknown"),
    Bde.ENCRYPTING: (Status.WARN, "disk_encryption.windows.encrypting",
                     "disk_encryption.windows.encrypting"),
}


def evaluate_windows(facts: list[DriveFacts]) -> Finding:
    evidence: Evidence = {"drives": [
        {"drive": f.drive, "state": f.state.value, "source": f.source,
         "shell_protection": f.shell_value, **({"wmi": f.wmi} if f.wmi else {})}
        for f in facts]}
    # The first failing drive (system before profile) names the problem; then unknown; then warn.
    for group in (_FAILING, (Bde.UNKNOWN,), (Bde.ENCRYPTING,)):
        for f in facts:
            if f.state in group:
                status, key, remediation = _WIN_MESSAGES[f.state]
                return Finding(status, msg(key, drive=f.drive, value=str(f.shell_value)),
                               evidence, remediation)
    drives = ", ".join(f.drive for f in facts)
    return Finding(Status.PASS, msg("disk_encryption.windows.on", drives=drives), evidence)


def check_windows(ctx: ProbeContext) -> Finding:
    section = ctx.windows_section("bitlocker")
    finding = evaluate_windows(parse_windows_bitlocker(section))
    if (share := network_profile(section)) is not None:
        finding.evidence["profile_on_network_share"] = share
    if section.get("wmi_error"):  # elevated, but WMI refused: the shell value was used instead
        finding.evidence["wmi_error"] = str(section["wmi_error"])[:300]
    return finding
