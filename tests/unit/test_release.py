"""Release integrity: SHA256SUMS + Ed25519 signature; any changed, missing or added artifact and
any foreign signature is caught and named. Also the CycloneDX SBOM."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from admin import cli as admin
from admin import release, sbom
from agent.policy import signing
from tests.conftest import require_tool

ARTIFACTS = {
    "byod-agent_0.1.0_amd64.deb": b"!<arch>\n" + bytes(range(256)) * 40,
    "BYOD-Agent-0.1.0.msi": b"\xd0\xcf\x11\xe0" + b"msi" * 3000,
    "byod-agent_0.1.0.cdx.json": b'{"bomFormat": "CycloneDX"}\n',
    "macos/BYOD-Agent-0.1.0.pkg": b"xar!" + b"pkg" * 1000,
}
PASSPHRASE = "correct horse battery"


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def dist(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    d = tmp_path / "dist"
    for name, data in ARTIFACTS.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
    sums, sig = release.sign_dist(d, key)
    (d / release.SUMS).write_bytes(sums)
    (d / release.SUMS_SIG).write_bytes(sig)
    return d


def test_signed_dist_verifies(dist: Path, key: Ed25519PrivateKey) -> None:
    result = release.verify_dist(dist, key.public_key())
    assert result.ok and result.checked == len(ARTIFACTS)
    lines = (dist / release.SUMS).read_text().splitlines()
    assert [ln.split("  ", 1)[1] for ln in lines] == sorted(ARTIFACTS)


def test_sha256sum_can_check_the_list(dist: Path) -> None:
    require_tool("sha256sum")
    out = subprocess.run(["sha256sum", "-c", release.SUMS], cwd=dist, capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("name", sorted(ARTIFACTS))
@pytest.mark.parametrize("where", [0, 0.5, -1])
def test_a_flipped_byte_anywhere_in_any_artifact_is_named(dist: Path, key: Ed25519PrivateKey,
                                                          name: str, where: float) -> None:
    path = dist / name
    data = bytearray(path.read_bytes())
    i = int(len(data) * where) if where != -1 else len(data) - 1
    data[i] ^= 0x01
    path.write_bytes(bytes(data))
    result = release.verify_dist(dist, key.public_key())
    assert result.problems == [(release.Problem.MISMATCH, name)]


def test_missing_and_extra_files_are_named(dist: Path, key: Ed25519PrivateKey) -> None:
    (dist / "BYOD-Agent-0.1.0.msi").unlink()
    (dist / "macos" / "evil.pkg").write_bytes(b"not signed")
    result = release.verify_dist(dist, key.public_key())
    assert result.problems == [(release.Problem.MISSING, "BYOD-Agent-0.1.0.msi"),
                               (release.Problem.EXTRA, "macos/evil.pkg")]


def test_a_foreign_key_or_an_edited_list_is_a_bad_signature(dist: Path,
                                                            key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    assert release.verify_dist(dist, other.public_key()).problems == [
        (release.Problem.BAD_SIGNATURE, release.SUMS_SIG)]
    sums = (dist / release.SUMS).read_bytes()
    (dist / release.SUMS).write_bytes(sums.replace(b"0", b"1", 1))
    assert release.verify_dist(dist, key.public_key()).problems == [
        (release.Problem.BAD_SIGNATURE, release.SUMS_SIG)]


def test_a_list_signed_by_the_attacker_is_refused(dist: Path, key: Ed25519PrivateKey) -> None:
    (dist / "byod-agent_0.1.0_amd64.deb").write_bytes(b"trojan")
    sums, sig = release.sign_dist(dist, Ed25519PrivateKey.generate())
    (dist / release.SUMS).write_bytes(sums)
    (dist / release.SUMS_SIG).write_bytes(sig)
    assert not release.verify_dist(dist, key.public_key()).ok


def test_unreadable_or_malformed_lists(dist: Path, key: Ed25519PrivateKey) -> None:
    (dist / release.SUMS_SIG).write_bytes(b"{not json")
    assert release.verify_dist(dist, key.public_key()).unreadable
    (dist / release.SUMS_SIG).unlink()
    assert release.verify_dist(dist, key.public_key()).problems == [
        (release.Problem.UNREADABLE, release.SUMS_SIG)]


@pytest.mark.parametrize("line", ["abc  x", f"{'0' * 64}  ../etc/passwd", f"{'0' * 64}  /abs",
                                  f"{'0' * 64} single-space"])
def test_parse_sums_refuses_unsafe_lines(line: str) -> None:
    with pytest.raises(ValueError):
        release.parse_sums(line.encode() + b"\n")


def test_symlinks_cannot_be_signed(dist: Path, key: Ed25519PrivateKey) -> None:
    (dist / "link.deb").symlink_to(dist / "byod-agent_0.1.0_amd64.deb")
    with pytest.raises(ValueError):
        release.sign_dist(dist, key)


def _write_key(tmp_path: Path, key: Ed25519PrivateKey) -> tuple[Path, Path, Path]:
    k = tmp_path / "release.key"
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.BestAvailableEncryption(PASSPHRASE.encode())))
    pub = tmp_path / "release.pub"
    pub.write_bytes(signing.public_key_pem(key.public_key()))
    pw = tmp_path / "pass.txt"
    pw.write_text(PASSPHRASE + "\n")
    return k, pub, pw


def test_cli_sign_and_verify_exit_codes(dist: Path, tmp_path: Path, key: Ed25519PrivateKey,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    k, pub, pw = _write_key(tmp_path, key)
    (dist / release.SUMS).unlink()
    (dist / release.SUMS_SIG).unlink()
    assert admin.main(["release", "sign", str(dist), "--key", str(k),
                       "--passphrase-file", str(pw)]) == 0
    assert admin.main(["release", "verify", str(dist), "--pubkey", str(pub)]) == 0
    capsys.readouterr()
    deb = dist / "byod-agent_0.1.0_amd64.deb"
    deb.write_bytes(deb.read_bytes()[:-1] + b"X")
    assert admin.main(["release", "verify", str(dist), "--pubkey", str(pub)]) == 1
    assert "byod-agent_0.1.0_amd64.deb" in capsys.readouterr().err
    shutil.rmtree(dist)
    dist.mkdir()
    assert admin.main(["release", "verify", str(dist), "--pubkey", str(pub)]) == 2
    assert admin.main(["release", "verify", str(dist), "--pubkey", str(tmp_path / "no")]) == 2


def test_cli_sign_refuses_a_wrong_passphrase(dist: Path, tmp_path: Path,
                                             key: Ed25519PrivateKey) -> None:
    k, _, pw = _write_key(tmp_path, key)
    pw.write_text("wrong passphrase!!\n")
    assert admin.main(["release", "sign", str(dist), "--key", str(k),
                       "--passphrase-file", str(pw)]) == 2


def test_sbom_lists_the_bundled_closure_deterministically() -> None:
    a = sbom.sbom_json(epoch=1_780_000_000)
    assert a == sbom.sbom_json(epoch=1_780_000_000)
    doc = json.loads(a)
    assert (doc["bomFormat"], doc["specVersion"]) == ("CycloneDX", "1.5")
    assert doc["metadata"]["component"]["name"] == "byod-agent"
    assert doc["metadata"]["timestamp"] == "2026-05-28T20:26:40Z"
    names = {sbom.normalize(c["name"]) for c in doc["components"]}
    assert {"cryptography", "pyside6-essentials", "shiboken6", "requests", "psutil"} <= names
    assert not names & {"pytest", "mypy", "ruff", "pyinstaller", "hypothesis"}
    refs = {c["bom-ref"] for c in doc["components"]} | {doc["metadata"]["component"]["bom-ref"]}
    for dep in doc["dependencies"]:
        assert dep["ref"] in refs and set(dep["dependsOn"]) <= refs
    assert doc["serialNumber"].startswith("urn:uuid:")
