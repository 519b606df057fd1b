"""The Windows MSI from installer/windows/byod-agent.wxs, built here with wixl (msitools) from a
small fixed payload laid out like the PyInstaller onedir, signed with osslsigncode and a test
code-signing certificate, then verified; one flipped byte must fail verification.

The Windows runner builds the same .wxs with WiX and signs with signtool (build.ps1); wixl stands
in for WiX here, and osslsigncode produces the same Authenticode signature format.
"""

from __future__ import annotations

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
UPGRADE_CODE = "{6F1B7C52-3D0A-4E8B-9A61-2C5D8E4F7A13}"


def _run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.fixture(scope="module")
def msi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("wixl", "msiinfo", "osslsigncode")
    work = tmp_path_factory.mktemp("msi")
    app = work / "app"  # the onedir's shape: exe at the top, _internal/ with resources
    (app / "_internal" / "resources" / "trust").mkdir(parents=True)
    (app / "byod-agent.exe").write_bytes(b"MZ" + b"\0" * 510 + b"test payload exe")
    (app / "_internal" / "python311.dll").write_bytes(b"MZ" + b"\1" * 2000)
    (app / "_internal" / "resources" / "trust" / "city.pub").write_text("test anchor\n")
    (app / "_internal" / "resources" / "i18n").mkdir()
    (app / "_internal" / "resources" / "i18n" / "core.json").write_text('{"k": "日本語"}\n')
    files = _run(sys.executable, str(GEN), "app", cwd=work)
    assert files.returncode == 0, files.stderr
    (work / "files.wxs").write_text(files.stdout, encoding="utf-8")
    out = _run("wixl", "-D", "Version=0.1.0", "-D", "SourceDir=app", "-o", "byod-agent.msi",
               str(WXS), "files.wxs", cwd=work)
    assert out.returncode == 0, out.stderr
    return work / "byod-agent.msi"


def _table(msi: Path, name: str) -> str:
    out = _run("msiinfo", "export", str(msi), name, cwd=msi.parent)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_msi_is_per_user_with_shortcut_run_key_and_upgrade_code(msi: Path) -> None:
    props = _table(msi, "Property")
    assert "MSIINSTALLPERUSER\t1" in props and f"UpgradeCode\t{UPGRADE_CODE}" in props
    assert "ProductVersion\t0.1.0" in props
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
