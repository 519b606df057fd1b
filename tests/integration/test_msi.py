"""The Windows MSI from installer/windows/byod-agent.wxs, built here with wixl (msitools) from a
small fixed payload laid out like the PyInstaller onedir, signed with osslsigncode and a test
code-signing certificate, then verified; one flipped byte must fail verification.

The Windows runner builds the same .wxs with WiX and signs with signtool (build.ps1); wixl stands
in for WiX here, and osslsigncode produces the same Authenticode signature format.

Build numbers and editions: the versions come from installer/build_versions.py (what build.ps1
calls); city builds 1 and 2 and a DEMO build are made from the same payload and their Property
and Upgrade tables read back with ``msiinfo export``. Installing needs Windows; what decides an
upgrade is in these tables (FindRelatedProducts compares UpgradeCode and ProductVersion).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from testkit import pki
from tests.conftest import REPO, require_tool

pytestmark = [pytest.mark.installer, pytest.mark.real]

WXS = REPO / "installer" / "windows" / "byod-agent.wxs"
GEN = REPO / "installer" / "windows" / "wxs_files.py"
VERSIONS = REPO / "installer" / "build_versions.py"
UPGRADE_CODE = "{6F1B7C52-3D0A-4E8B-9A61-2C5D8E4F7A13}"  # the city's, for the product's life
DEMO_UPGRADE_CODE = "{B03B0658-C753-46A8-94E3-1D935AD704A5}"


def _run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)


def _versions(edition: str, build: int | None, cwd: Path) -> dict[str, str]:
    extra = ["--build-number", str(build)] if build is not None else []
    out = _run(sys.executable, str(VERSIONS), "0.1.0", "--edition", edition, *extra, cwd=cwd)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def _build(work: Path, edition: str, build: int | None) -> Path:
    """What build.ps1 does after PyInstaller, with wixl for candle/light."""
    v = _versions(edition, build, work)
    stem = f"{edition}-{build}"
    files = _run(sys.executable, str(GEN), "--edition", edition, "app", cwd=work)
    assert files.returncode == 0, files.stderr
    (work / f"files-{stem}.wxs").write_text(files.stdout, encoding="utf-8")
    out = _run("wixl", "-D", f"Version={v['msi']}", "-D", f"DisplayVersion={v['display']}",
               "-D", f"Edition={edition}", "-D", "SourceDir=app", "-o", f"{stem}.msi",
               str(WXS), f"files-{stem}.wxs", cwd=work)
    assert out.returncode == 0, out.stderr
    return work / f"{stem}.msi"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("wixl", "msiinfo", "osslsigncode")
    work = tmp_path_factory.mktemp("msi")
    app = work / "app"  # the onedir's shape: exe at the top, _internal/ with resources
    (app / "_internal" / "resources" / "trust").mkdir(parents=True)
    (app / "byod-agent.exe").write_bytes(b"MZ" + b"\0" * 510 + b"test payload exe")
    (app / "_internal" / "python311.dll").write_bytes(b"MZ" + b"\1" * 2000)
    (app / "_internal" / "resources" / "trust" / "city.pub").write_text("test anchor\n")
    (app / "_internal" / "resources" / "i18n").mkdir()
    (app / "_internal" / "resources" / "i18n" / "core.json").write_text('{"k": "日本語"}\n')
    return work


@pytest.fixture(scope="module")
def msi(work: Path) -> Path:
    """The city's build 1."""
    return _build(work, "city", 1)


@pytest.fixture(scope="module")
def msi_build2(work: Path) -> Path:
    return _build(work, "city", 2)


@pytest.fixture(scope="module")
def demo_msi(work: Path) -> Path:
    return _build(work, "demo", None)


def _table(msi: Path, name: str) -> str:
    out = _run("msiinfo", "export", str(msi), name, cwd=msi.parent)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_msi_is_per_user_with_shortcut_run_key_and_upgrade_code(msi: Path) -> None:
    props = _table(msi, "Property")
    assert "MSIINSTALLPERUSER\t1" in props and f"UpgradeCode\t{UPGRADE_CODE}" in props
    assert "ProductVersion\t0.1.1\n" in props  # 0.1.0, the city's build 1
    assert "ProductName\tBYOD Agent\n" in props
    registry = _table(msi, "Registry")
    assert "Software\\Microsoft\\Windows\\CurrentVersion\\Run\tjp.lg.byod-agent\t" \
           '"[INSTALLDIR]byod-agent.exe" tray' in registry
    assert all("\t1\t" in ln or ln.startswith(("Registry", "s72")) for ln in
               registry.splitlines() if ln.strip())  # root 1 = HKCU only, never HKLM
    shortcut = _table(msi, "Shortcut")
    assert "ProgramMenuFolder\tBYOD Agent" in shortcut
    upgrade = _table(msi, "Upgrade")
    assert "WIX_UPGRADE_DETECTED" in upgrade and "WIX_DOWNGRADE_DETECTED" in upgrade
    file_table = _table(msi, "File")
    for name in ("byod-agent.exe", "python311.dll", "city.pub", "core.json"):
        assert name in file_table
    removal = _table(msi, "RemoveFile")  # every directory is removed on uninstall
    assert removal.count("\t2") >= 4


@pytest.fixture(scope="module")
def code_signing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    d = tmp_path_factory.mktemp("codesign")
    ca = pki.make_ca("Example City Code Signing Test CA")
    leaf = pki.issue(ca, "Example City IT (test)", usages=(ExtendedKeyUsageOID.CODE_SIGNING,),
                     key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    (d / "ca.pem").write_bytes(ca.cert_pem)
    (d / "cs.pem").write_bytes(leaf.cert_pem)
    (d / "cs.key").write_bytes(leaf.key_pem())
    return d / "ca.pem", d / "cs.pem", d / "cs.key"


@pytest.fixture(scope="module")
def signed(msi: Path, code_signing: tuple[Path, Path, Path]) -> Path:
    _, cert, key = code_signing
    out = msi.with_name("byod-agent-signed.msi")
    # No -ts here (no network): the Windows runner adds an RFC 3161 timestamp (/tr, /td sha256).
    res = _run("osslsigncode", "sign", "-certs", str(cert), "-key", str(key), "-h", "sha256",
               "-n", "BYOD Agent", "-i", "https://city.example/byod-agent", "-in", str(msi),
               "-out", str(out), cwd=msi.parent)
    assert res.returncode == 0, res.stdout + res.stderr
    return out


def test_signed_msi_verifies(signed: Path, code_signing: tuple[Path, Path, Path]) -> None:
    ca, _, _ = code_signing
    res = _run("osslsigncode", "verify", "-CAfile", str(ca), "-in", str(signed), cwd=signed.parent)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Signature verification: ok" in res.stdout
    assert "Example City IT (test)" in res.stdout


def test_unsigned_msi_does_not_verify(msi: Path, code_signing: tuple[Path, Path, Path]) -> None:
    res = _run("osslsigncode", "verify", "-CAfile", str(code_signing[0]), "-in", str(msi),
               cwd=msi.parent)
    assert res.returncode != 0


def test_a_flipped_byte_in_the_payload_fails_verification(
        signed: Path, code_signing: tuple[Path, Path, Path]) -> None:
    data = bytearray(signed.read_bytes())
    cab = data.find(b"MSCF")  # the embedded cabinet with the application files
    assert cab > 0
    data[cab + 100] ^= 0x01
    flipped = signed.with_name("flipped.msi")
    flipped.write_bytes(bytes(data))
    res = _run("osslsigncode", "verify", "-CAfile", str(code_signing[0]), "-in", str(flipped),
               cwd=signed.parent)
    assert res.returncode != 0
    assert "MISMATCH" in res.stdout or "failed" in res.stdout.lower()


def test_a_foreign_root_is_not_trusted(signed: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    other.write_bytes(pki.make_ca("Someone Else").cert_pem)
    res = _run("osslsigncode", "verify", "-CAfile", str(other), "-in", str(signed),
               cwd=signed.parent)
    assert res.returncode != 0


def _properties(msi: Path) -> dict[str, str]:
    rows = [ln.split("\t") for ln in _table(msi, "Property").splitlines()[3:] if "\t" in ln]
    return {r[0]: r[1] for r in rows}


def _upgrade_rows(msi: Path) -> list[dict[str, str]]:
    lines = _table(msi, "Upgrade").splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, ln.split("\t"), strict=False)) for ln in lines[3:] if ln.strip()]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


MIN_INCLUSIVE, ONLY_DETECT = 0x100, 0x2  # msidbUpgradeAttributes


def test_build_2_upgrades_build_1_of_the_same_product(msi: Path, msi_build2: Path) -> None:
    one, two = _properties(msi), _properties(msi_build2)
    assert _version(two["ProductVersion"]) > _version(one["ProductVersion"])
    assert (one["ProductVersion"], two["ProductVersion"]) == ("0.1.1", "0.1.2")
    assert one["UpgradeCode"] == two["UpgradeCode"] == UPGRADE_CODE
    assert one["ProductCode"] != two["ProductCode"]  # a major upgrade: a new ProductCode
    # MajorUpgrade: build 2 finds older versions of its own UpgradeCode and removes them
    own = [r for r in _upgrade_rows(msi_build2) if r["UpgradeCode"] == UPGRADE_CODE]
    upgrade = next(r for r in own if r["ActionProperty"] == "WIX_UPGRADE_DETECTED")
    assert upgrade["VersionMax"] == "0.1.2" and not int(upgrade["Attributes"]) & ONLY_DETECT
    assert "RemoveExistingProducts" in _table(msi_build2, "InstallExecuteSequence")
    # the people-readable version: the Installer registry value and the package description
    assert "0.1.0+city2" in _table(msi_build2, "Registry")


def test_demo_is_another_product_that_never_replaces_the_city_build(
        msi: Path, demo_msi: Path) -> None:
    demo, city = _properties(demo_msi), _properties(msi)
    assert demo["UpgradeCode"] == DEMO_UPGRADE_CODE != city["UpgradeCode"]
    assert demo["ProductName"] == "BYOD Agent (DEMO)" and city["ProductName"] == "BYOD Agent"
    assert demo["ProductVersion"] == "0.1.0"  # no build number
    assert "ProgramMenuFolder\tBYOD Agent (DEMO)" in _table(demo_msi, "Shortcut")
    # DEMO only detects the city's product, and a launch condition refuses to install over it
    rows = [r for r in _upgrade_rows(demo_msi) if r["UpgradeCode"] == UPGRADE_CODE]
    assert len(rows) == 1 and int(rows[0]["Attributes"]) & ONLY_DETECT
    assert rows[0]["ActionProperty"] == "BYOD_CITY_INSTALLED"
    launch = _table(demo_msi, "LaunchCondition")
    assert "NOT BYOD_CITY_INSTALLED\t" in launch and "city's BYOD Agent is installed" in launch
    # its file components are its own (another GUID namespace and key path)
    assert "Components (DEMO)" in _table(demo_msi, "Registry")
    city_guids = {ln.split("\t")[1] for ln in _table(msi, "Component").splitlines()[3:]}
    demo_guids = {ln.split("\t")[1] for ln in _table(demo_msi, "Component").splitlines()[3:]}
    shared = city_guids & demo_guids  # only the fixed components of byod-agent.wxs
    assert len(shared) == 5, shared


def test_the_city_build_removes_a_demo_install(msi: Path) -> None:
    rows = [r for r in _upgrade_rows(msi) if r["UpgradeCode"] == DEMO_UPGRADE_CODE]
    assert len(rows) == 1 and rows[0]["ActionProperty"] == "BYOD_DEMO_REPLACED"
    attributes = int(rows[0]["Attributes"])
    assert not attributes & ONLY_DETECT and attributes & MIN_INCLUSIVE  # every DEMO version
    assert rows[0]["VersionMin"] == "0.0.0" and not rows[0]["VersionMax"]
    assert "BYOD_DEMO_REPLACED" in _properties(msi)["SecureCustomProperties"]
    assert "BYOD_CITY_INSTALLED" not in _table(msi, "LaunchCondition")


def test_an_unknown_edition_or_a_demo_build_number_stops_the_build(work: Path) -> None:
    out = _run("wixl", "-D", "Version=0.1.0", "-D", "DisplayVersion=0.1.0", "-D", "SourceDir=app",
               "-o", "none.msi", str(WXS), cwd=work)  # no Edition
    assert out.returncode != 0 and "Edition must be city or demo" in out.stderr
    bad = _run(sys.executable, str(VERSIONS), "0.1.0", "--edition", "demo", "--build-number", "2",
               cwd=work)
    assert bad.returncode == 2 and "DEMO builds have none" in bad.stderr
    big = _run(sys.executable, str(VERSIONS), "0.1.0", "--edition", "city", "--build-number",
               "1000", cwd=work)
    assert big.returncode == 2 and "1..999" in big.stderr
