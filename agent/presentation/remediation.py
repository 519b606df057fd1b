"""How to fix a failed check: translated steps plus the OS settings page to open."""

from __future__ import annotations

from typing import Any

from agent.core import i18n

# Settings pages that open straight to the fix. Windows: ms-settings URIs (Microsoft "Launch the
# Windows Settings app"); macOS: x-apple.systempreferences URLs (System Settings extensions).
_MAC = "x-apple.systempreferences:"
SETTINGS_URIS: dict[str, str] = {
    "os_supported.upgrade.windows": "ms-settings:windowsupdate",
    "os_updates.windows": "ms-settings:windowsupdate",
    "os_updates.service_disabled": "ms-settings:windowsupdate",
    "os_updates.auto_update_off": "ms-settings:windowsupdate",
    "os_updates.reboot.windows": "ms-settings:windowsupdate",
    "disk_encryption.windows": "ms-settings:deviceencryption",
    "antivirus.windows": "windowsdefender://threat/",
    "antivirus.windows_update": "windowsdefender://threat/",
    "firewall.windows": "windowsdefender://network/",
    "screen_lock.windows": "ms-settings:lockscreen",
    "os_supported.upgrade.macos": _MAC + "com.apple.Software-Update-Settings.extension",
    "os_updates.macos": _MAC + "com.apple.Software-Update-Settings.extension",
    "os_updates.macos_auto": _MAC + "com.apple.Software-Update-Settings.extension",
    "os_updates.reboot.macos": _MAC + "com.apple.Software-Update-Settings.extension",
    "disk_encryption.macos": _MAC + "com.apple.settings.PrivacySecurity.extension",
    "antivirus.macos": _MAC + "com.apple.Software-Update-Settings.extension",
    "antivirus.gatekeeper": _MAC + "com.apple.settings.PrivacySecurity.extension",
    "firewall.macos": _MAC + "com.apple.Network-Settings.extension?Firewall",
    "screen_lock.macos": _MAC + "com.apple.Lock-Screen-Settings.extension",
}


def steps(key: str, lang: str) -> list[str]:
    raw = i18n.text(f"remediation.{key}.steps", lang)
    return [line for line in raw.splitlines() if line.strip()]


def title(key: str, lang: str) -> str:
    return i18n.text(f"remediation.{key}.title", lang)


def settings_uri(key: str, os_name: str) -> str | None:
    return SETTINGS_URIS.get(key) or SETTINGS_URIS.get(f"{key}.{os_name}")


def describe(key: str | None, os_name: str) -> dict[str, Any] | None:
    if key is None:
        return None
    out: dict[str, Any] = {"key": key, "settings_uri": settings_uri(key, os_name)}
    for lang in i18n.LANGS:
        out[lang] = {"title": title(key, lang), "steps": steps(key, lang)}
    return out
