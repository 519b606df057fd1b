"""Managed settings: each platform's reader on recorded/constructed inputs, the Linux one for real
(the real CLI in a mount namespace where /etc/byod-agent is a test directory), precedence, the
lock held by the CLI, build-config embedding, and the ADMX/ADML pair tied to the keys the agent
reads.

Fixture shapes (tests/fixtures/managed/): ``windows_hklm_policies.json`` is constructed from the
ADMX semantics (boolean policies write REG_DWORD 1/0 via enabledValue/disabledValue, enum and text
elements REG_SZ) in the tuple shape of ``winreg.EnumValue``; ``macos_managed_preferences.plist``
is constructed from the sample installer/macos/byod-agent.mobileconfig (the payload's keys as the
binary plist macOS writes into /Library/Managed Preferences); ``linux_managed.toml`` is our own
format.
"""

from __future__ import annotations

import json
import os
import plistlib
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET  # our own files in the repository, not outside input
from collections.abc import Mapping
from pathlib import Path

import pytest

from agent.core import i18n
from agent.settings import managed, store
from agent.settings.managed import KEYS, Source
from tests.conftest import FIXTURES, REPO, require, require_linux_root

ADMX_NS = {"p": "http://schemas.microsoft.com/GroupPolicy/2006/07/PolicyDefinitions"}
ADMX = REPO / "installer" / "windows" / "admx"
M = FIXTURES / "managed"


class DictRegistry:
    def __init__(self, hives: Mapping[tuple[str, str], Mapping[str, tuple[object, int]]]) -> None:
        self.hives = hives

    def values(self, hive: str, key: str) -> Mapping[str, tuple[object, int]]:
        return self.hives.get((hive, key), {})


def _windows_values() -> dict[str, tuple[object, int]]:
    doc = json.loads((M / "windows_hklm_policies.json").read_text(encoding="utf-8"))
    return {name: (data, kind) for name, data, kind in doc["values"]}


def test_windows_policy_key(tmp_path: Path) -> None:
    reg = DictRegistry({("HKLM", managed.POLICY_KEY): _windows_values()})
    got = managed.load("windows", registry=reg, resources=tmp_path)
    assert got.value("StartAtLogin") is True and got.value("AutoUpdate") is False
    assert got.value("UpdateChannel") == "pilot" and got.value("Language") == "ja"
    assert got.value("DiagnosticLevel") == "strict"
    assert got.value("PolicyURL") == "https://policy.city.example.lg.jp/p.toml"  # REG_EXPAND_SZ
    assert not got.is_locked("VerifierURL")  # http:// is not usable: not locked to nonsense
    assert "Unrelated" not in got.locked and set(got.ignored) == {"Unrelated", "VerifierURL"}
    assert all(e.source is Source.PLATFORM for e in got.locked.values())


def test_windows_msi_properties_lock_as_installer_and_policy_wins(tmp_path: Path) -> None:
    msi = {"UpdateChannel": ("general", 1), "StartAtLogin": ("1", 1), "Language": ("", 1),
           "VerifierURL": ("https://verifier.city.example.lg.jp/", 1)}
    reg = DictRegistry({("HKLM", managed.POLICY_KEY): {"UpdateChannel": ("pilot", 1)},
                        ("HKCU", managed.MSI_KEY): msi})
    got = managed.load("windows", registry=reg, resources=tmp_path)
    assert got.locked["UpdateChannel"].value == "pilot"  # the GPO beats the install command
    assert got.locked["UpdateChannel"].source is Source.PLATFORM
    assert got.locked["StartAtLogin"].value is True
    assert got.locked["StartAtLogin"].source is Source.INSTALLER
    assert not got.is_locked("Language")  # a property not given on msiexec's line: not set
    assert got.locked["VerifierURL"].source is Source.INSTALLER


def test_macos_managed_preferences_plist(tmp_path: Path) -> None:
    got = managed.load("macos", path=M / "macos_managed_preferences.plist", resources=tmp_path)
    assert got.value("StartAtLogin") is True and got.value("UpdateChannel") == "general"
    assert got.value("UpdateURL") == "https://updates.city.example.lg.jp/byod-agent/"
    assert got.value("Language") == "ja" and got.ignored == ()


def test_linux_toml_and_broken_files(tmp_path: Path) -> None:
    got = managed.load("linux", path=M / "linux_managed.toml", resources=tmp_path)
    assert got.value("StartAtLogin") is True and got.value("Language") == "en"
    assert not got.is_locked("DiagnosticLevel") and "DiagnosticLevel" in got.ignored
    bad = tmp_path / "bad.toml"
    bad.write_text("StartAtLogin = [")
    assert managed.load("linux", path=bad, resources=tmp_path).locked == {}
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (managed.MAX_BYTES + 1))
    assert managed.load("linux", path=big, resources=tmp_path).locked == {}
    assert managed.load("linux", path=tmp_path / "none.toml", resources=tmp_path).locked == {}
    assert Path("/etc/byod-agent/managed.toml") == managed.LINUX_PATH


def test_embedded_managed_json_locks_as_installer(tmp_path: Path) -> None:
    (tmp_path / "managed.json").write_text(json.dumps(
        {"format": "byod-managed/1", "settings": {"StartAtLogin": True, "Language": "ja"}}))
    toml = tmp_path / "m.toml"
    toml.write_text('Language = "en"\n')
    got = managed.load("linux", path=toml, resources=tmp_path)
    assert got.locked["Language"].value == "en" and got.locked["Language"].source is \
        Source.PLATFORM
    assert got.locked["StartAtLogin"].source is Source.INSTALLER


@pytest.mark.parametrize("url,ok", [
    ("https://updates.city.example.lg.jp/byod/", True), ("https://127.0.0.1:8443/", True),
    ("http://updates.example/", False), ("https://user:pw@host/", False),
    ("https://host/a b", False), ("https://host/\x1b[31m", False), ("https:///path", False),
    ("https://" + "a" * 3000, False), ("file:///etc/passwd", False)])
def test_url_values(url: str, ok: bool) -> None:
    assert managed.valid_url(url) is ok


def test_store_refuses_a_locked_key_and_keeps_the_users_others(tmp_path: Path) -> None:
    locked = managed.merge({"StartAtLogin": True}, {})
    path = tmp_path / "settings.json"
    with pytest.raises(store.SettingLocked) as exc:
        store.set_value(path, locked, "StartAtLogin", False)
    for lang in i18n.LANGS:
        assert "StartAtLogin" in i18n.render(exc.value.message, lang)
    store.set_value(path, locked, "UpdateChannel", "pilot")
    eff = store.effective(locked, store.load_user(path))
    assert eff["UpdateChannel"] == "pilot" and eff["StartAtLogin"] is True
    with pytest.raises(store.SettingInvalid):
        store.parse_cli_value("UpdateURL", "http://x/")
    assert store.parse_cli_value("AutoUpdate", "off") is False


def _agent(env: dict[str, str], *args: str,
           ns: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "agent", "--lang", "en", *args]
    if ns is not None:  # the real path /etc/byod-agent, seen only inside this mount namespace
        script = ('mount --make-rprivate / && mount --bind "$1" /etc/byod-agent && shift && '
                  'exec "$@"')
        cmd = ["unshare", "-m", "sh", "-c", script, "sh", str(ns), *cmd]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
                          check=False)


def test_cli_cannot_change_a_locked_setting_for_real(tmp_path: Path) -> None:
    """The real reader on the real path: /etc/byod-agent/managed.toml via a bind mount in a
    private mount namespace (the host's /etc/byod-agent stays an empty directory)."""
    require_linux_root()
    require(shutil.which("unshare") is not None, "needs unshare (util-linux)")
    Path("/etc/byod-agent").mkdir(exist_ok=True)
    etc = tmp_path / "etc-byod-agent"
    etc.mkdir()
    (etc / "managed.toml").write_text('StartAtLogin = true\nUpdateChannel = "pilot"\n')
    env = {**os.environ, "HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "c"),
           "XDG_STATE_HOME": str(tmp_path / "s"), "XDG_DATA_HOME": str(tmp_path / "d"),
           "TMPDIR": str(tmp_path)}
    refused = _agent(env, "settings", "set", "UpdateChannel", "general", ns=etc)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "UpdateChannel is set by your organisation" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    assert not (tmp_path / "c" / "byod-agent" / "settings.json").exists()
    ok = _agent(env, "settings", "set", "DiagnosticLevel", "strict", ns=etc)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    shown = _agent(env, "settings", "show", ns=etc)
    assert "UpdateChannel = pilot  [locked by your organisation (this PC's managed settings)]" \
        in shown.stdout
    assert "DiagnosticLevel = strict  [your choice]" in shown.stdout
    free = _agent(env, "settings", "set", "UpdateChannel", "general")  # nothing managed here
    assert free.returncode == 0, free.stdout + free.stderr


def _admx_policies() -> dict[str, ET.Element]:
    root = ET.parse(  # noqa: S314
        ADMX / "byod-agent.admx").getroot()
    return {p.get("name", ""): p for p in root.iterfind("p:policies/p:policy", ADMX_NS)}


def test_admx_policies_are_the_keys_the_agent_reads() -> None:
    policies = _admx_policies()
    assert set(policies) == set(KEYS)
    for name, policy in policies.items():
        assert policy.get("key") == managed.POLICY_KEY and policy.get("class") == "Machine"
        value_names = {policy.get("valueName")} | {
            e.get("valueName") for e in policy.iterfind("p:elements/*", ADMX_NS)}
        assert name in value_names, name
        spec = KEYS[name]
        if spec.kind is managed.Kind.CHOICE:
            items = {s.text for s in policy.iterfind("p:elements/p:enum/p:item/p:value/p:string",
                                                     ADMX_NS)}
            assert items == set(spec.choices), name
        if spec.kind is managed.Kind.BOOL:
            assert policy.find("p:enabledValue/p:decimal", ADMX_NS) is not None


@pytest.mark.parametrize("locale", ["ja-JP", "en-US"])
def test_adml_defines_every_string_and_presentation(locale: str) -> None:
    admx = (ADMX / "byod-agent.admx").read_text(encoding="utf-8")
    root = ET.parse(  # noqa: S314
        ADMX / locale / "byod-agent.adml").getroot()
    strings = {s.get("id") for s in root.iterfind("p:resources/p:stringTable/p:string", ADMX_NS)}
    presentations = {p.get("id") for p in
                     root.iterfind("p:resources/p:presentationTable/p:presentation", ADMX_NS)}
    assert set(re.findall(r"\$\(string\.([A-Za-z0-9_]+)\)", admx)) == strings
    assert set(re.findall(r"\$\(presentation\.([A-Za-z0-9_]+)\)", admx)) == presentations
    texts = [s.text or "" for s in root.iterfind("p:resources/p:stringTable/p:string", ADMX_NS)]
    if locale == "ja-JP":
        assert any(re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", t) for t in texts)


def test_msi_public_properties_write_the_same_keys() -> None:
    wxs = ET.parse(  # noqa: S314
        REPO / "installer" / "windows" / "byod-agent.wxs").getroot()
    ns = {"w": "http://schemas.microsoft.com/wix/2006/wi"}
    comp = next(c for c in wxs.iter(f"{{{ns['w']}}}Component") if c.get("Id") == "ManagedDefaults")
    values = {r.get("Name"): r.get("Value") for r in comp.iterfind("w:RegistryValue", ns)}
    assert values == {k: f"[{k.upper()}]" for k in KEYS}
    assert {r.get("Root") for r in comp.iterfind("w:RegistryValue", ns)} == {"HKCU"}
    assert {r.get("Key") for r in comp.iterfind("w:RegistryValue", ns)} == {managed.MSI_KEY}


def test_mobileconfig_sample_uses_the_keys() -> None:
    doc = plistlib.loads((REPO / "installer" / "macos" / "byod-agent.mobileconfig").read_bytes())
    [payload] = doc["PayloadContent"]
    assert payload["PayloadType"] == managed.MACOS_DOMAIN
    keys = {k for k in payload if not k.startswith("Payload")}
    assert keys == set(KEYS)
    assert all(managed.coerce(k, payload[k]) is not None for k in keys)
