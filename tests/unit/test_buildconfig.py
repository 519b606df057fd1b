"""byod-admin build-config: the city's policy, trust anchors, gateway CA and help-desk key are
checked with the agent's own code; DEMO material never passes, however it is renamed."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from admin import buildconfig
from admin import cli as admin
from agent.keystore import KeystoreError, city_ca
from agent.policy import signing
from agent.policy.errors import PolicyRefused
from testkit import pki
from tests.conftest import REPO

DEMO_PUB = REPO / "resources" / "trust" / "demo-DEMO.pub"
DEMO_POLICY = REPO / "resources" / "policy" / "demo-policy.toml"


def _toml_time(t: datetime) -> str:
    return t.replace(microsecond=0).isoformat()


def policy_text(*, ca_pem: bytes, helpdesk: str | None, policy_id: str = "city-example",
                expires_days: int = 365) -> str:
    now = datetime.now(UTC)
    diag = f'helpdesk_public_key = "{helpdesk}"\n' if helpdesk else ""
    return (f'id = "{policy_id}"\nserial = 7\ndescription = "Example City test policy"\n'
            f"not_before = {_toml_time(now - timedelta(days=1))}\n"
            f"expires = {_toml_time(now + timedelta(days=expires_days))}\n"
            "recheck_interval_minutes = 15\n\n"
            '[[targets]]\nid = "office-pc"\nname_ja = "庁内PC"\nname_en = "Office PC"\n'
            'protocol = "rdp"\nmode = "tunnel"\nhost = "office-pc-0001.city.example"\n'
            'port = 3389\ngateway = "gateway.city.example:443"\n'
            f'gateway_ca = """\n{ca_pem.decode()}"""\n\n[diagnostics]\n{diag}')


@dataclass
class CityFiles:
    """A signing key pair, gateway CA, help-desk recipient and a signed policy, as IT has them."""

    root: Path
    key: Ed25519PrivateKey
    pub: Path
    ca: Path
    helpdesk: Path
    policy: Path
    city_ca: Path  # the CA that issues staff certificates (--city-ca)
    city_ca_pair: pki.Pair

    def sign(self, text: str, name: str = "city-policy.toml") -> Path:
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        path.with_name(name + ".sig").write_bytes(signing.sign(path.read_bytes(), self.key))
        return path


def city_files(root: Path) -> CityFiles:
    root.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pub = root / "city-example-2026.pub"
    pub.write_bytes(signing.public_key_pem(key.public_key()))
    ca = pki.make_ca("Example City Gateway CA")
    (root / "gateway-ca.pem").write_bytes(ca.cert_pem)
    recipient = str(pyrage.x25519.Identity.generate().to_public())
    (root / "helpdesk.age").write_text(f"# help desk, 2026\n{recipient}\n", encoding="ascii")
    city_ca = pki.make_ca("Example City Staff CA")
    (root / "city-ca.pem").write_bytes(city_ca.cert_pem)
    files = CityFiles(root, key, pub, root / "gateway-ca.pem", root / "helpdesk.age",
                      root / "city-policy.toml", root / "city-ca.pem", city_ca)
    files.sign(policy_text(ca_pem=ca.cert_pem, helpdesk=recipient))
    return files


def city_config(root: Path) -> tuple[CityFiles, Path]:
    """A valid build-config directory (used by the installer integration test too)."""
    files = city_files(root / "it")
    out = root / "config"
    buildconfig.make_config(files.policy, [files.pub], out, gateway_ca=files.ca,
                            helpdesk_key=files.helpdesk, city_ca=files.city_ca)
    return files, out


@pytest.fixture
def city(tmp_path: Path) -> CityFiles:
    return city_files(tmp_path / "it")


def _refusal(exc: pytest.ExceptionInfo[buildconfig.ConfigRefused]) -> str:
    return exc.value.message.key.removeprefix("buildconfig.refused.")


def test_writes_a_read_only_config_the_build_can_recheck(city: CityFiles, tmp_path: Path) -> None:
    out = tmp_path / "config"
    config = buildconfig.make_config(city.policy, [city.pub], out, gateway_ca=city.ca,
                                     helpdesk_key=city.helpdesk)
    assert (config.policy_id, config.serial) == ("city-example", 7)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "build-config.json", "gateway-ca.pem", "helpdesk.age", "policy/city-policy.toml",
        "policy/city-policy.toml.sig", "trust/city-example-2026.pub"]
    assert all(p.stat().st_mode & 0o222 == 0 for p in out.rglob("*") if p.is_file())
    assert (out / "policy" / "city-policy.toml").read_bytes() == city.policy.read_bytes()
    manifest = json.loads((out / "build-config.json").read_text())
    assert manifest["format"] == "byod-build-config/1"
    assert manifest["trust_key_ids"] == [signing.key_id(city.key.public_key())]
    assert buildconfig.check_config(out).policy_id == "city-example"
    assert buildconfig.demo_findings(out) == []


def test_demo_trust_anchor_is_refused_even_renamed(city: CityFiles, tmp_path: Path) -> None:
    renamed = tmp_path / "city-2026.pub"
    shutil.copyfile(DEMO_PUB, renamed)
    for pub in (DEMO_PUB, renamed):
        with pytest.raises(buildconfig.ConfigRefused) as exc:
            buildconfig.make_config(city.policy, [city.pub, pub], tmp_path / "out")
        assert _refusal(exc) == "demo_trust"
    assert not (tmp_path / "out").exists()


def test_demo_policy_is_refused_even_signed_by_the_city(city: CityFiles, tmp_path: Path) -> None:
    demo = city.sign(DEMO_POLICY.read_text(encoding="utf-8"), "renamed.toml")
    with pytest.raises(buildconfig.ConfigRefused) as exc:
        buildconfig.make_config(demo, [city.pub], tmp_path / "out")
    assert _refusal(exc) == "demo_policy"


def test_policy_must_verify_against_the_given_anchors(city: CityFiles, tmp_path: Path) -> None:
    other = tmp_path / "other.pub"
    other.write_bytes(signing.public_key_pem(Ed25519PrivateKey.generate().public_key()))
    with pytest.raises(PolicyRefused) as exc:
        buildconfig.make_config(city.policy, [other], tmp_path / "out")
    assert exc.value.reason == "unknown_signer"


def test_gateway_ca_must_be_the_policys(city: CityFiles, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    other.write_bytes(pki.make_ca("Another CA").cert_pem)
    with pytest.raises(buildconfig.ConfigRefused) as exc:
        buildconfig.make_config(city.policy, [city.pub], tmp_path / "out", gateway_ca=other)
    assert _refusal(exc) == "gateway_ca_mismatch"
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(pki.issue(pki.make_ca(), "not a CA").cert_pem)
    with pytest.raises(buildconfig.ConfigRefused) as exc:
        buildconfig.make_config(city.policy, [city.pub], tmp_path / "out", gateway_ca=leaf)
    assert _refusal(exc) == "gateway_ca_unusable"


def test_helpdesk_key_must_be_an_age_recipient_and_the_policys(city: CityFiles,
                                                                 tmp_path: Path) -> None:
    other = tmp_path / "other.age"
    other.write_text(str(pyrage.x25519.Identity.generate().to_public()) + "\n")
    with pytest.raises(buildconfig.ConfigRefused) as exc:
        buildconfig.make_config(city.policy, [city.pub], tmp_path / "out", helpdesk_key=other)
    assert _refusal(exc) == "helpdesk_mismatch"
    bogus = tmp_path / "bogus.age"
    bogus.write_text("age1notarecipient\n")
    with pytest.raises(buildconfig.ConfigRefused) as exc:
        buildconfig.make_config(city.policy, [city.pub], tmp_path / "out", helpdesk_key=bogus)
    assert _refusal(exc) == "helpdesk_unusable"


def test_policy_expiring_soon_is_refused(city: CityFiles, tmp_path: Path) -> None:
    soon = city.sign(policy_text(ca_pem=city.ca.read_bytes(), helpdesk=None, expires_days=10),
                     "soon.toml")
    with pytest.raises(buildconfig.ConfigRefused) as exc:
        buildconfig.make_config(soon, [city.pub], tmp_path / "out")
    assert _refusal(exc) == "expires_soon"


def test_out_dir_must_be_new(city: CityFiles, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("x")
    with pytest.raises(buildconfig.ConfigRefused) as exc:
        buildconfig.make_config(city.policy, [city.pub], tmp_path / "out")
    assert _refusal(exc) == "out_not_empty"


def test_check_config_catches_a_demo_anchor_slipped_in_later(tmp_path: Path) -> None:
    _, out = city_config(tmp_path)
    (out / "trust").chmod(0o755)
    shutil.copyfile(DEMO_PUB, out / "trust" / "extra.pub")
    with pytest.raises(buildconfig.ConfigRefused) as exc:
        buildconfig.check_config(out)
    assert _refusal(exc) == "config_tampered"
    manifest = json.loads((out / "build-config.json").read_text())  # forge the manifest too
    manifest["files"]["trust/extra.pub"] = hashlib.sha256(
        DEMO_PUB.read_bytes()).hexdigest()
    (out / "build-config.json").chmod(0o644)
    (out / "build-config.json").write_text(json.dumps(manifest))
    with pytest.raises(buildconfig.ConfigRefused) as exc:
        buildconfig.check_config(out)
    assert _refusal(exc) == "demo_trust"
    assert any("DEMO trust anchor" in f for f in buildconfig.demo_findings(out))


def test_city_ca_ships_as_the_trust_cert_import_reads(city: CityFiles, tmp_path: Path) -> None:
    out = tmp_path / "config"
    buildconfig.make_config(city.policy, [city.pub], out, gateway_ca=city.ca,
                            city_ca=city.city_ca)
    shipped = out / "trust" / "city-ca.pem"
    assert shipped.read_bytes() == city.city_ca.read_bytes()
    assert "trust/city-ca.pem" in json.loads((out / "build-config.json").read_text())["files"]
    assert buildconfig.check_config(out).policy_id == "city-example"
    assert buildconfig.demo_findings(out) == []  # a city CA is not "not a trust anchor"
    # The agent's own reader (cert import, the bundle reader) takes the shipped file.
    cas = city_ca.city_cas(shipped)
    assert [c.subject for c in cas] == [city.city_ca_pair.cert.subject]
    city_ca.check_issuer([pki.issue(city.city_ca_pair, "Yamada Taro").cert], cas)
    with pytest.raises(KeystoreError):
        city_ca.check_issuer([pki.issue(pki.make_ca("Other CA"), "Yamada Taro").cert], cas)


def test_installer_build_lays_the_city_ca_in_and_passes_its_demo_scan(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("byod_installer_build",
                                                  REPO / "installer" / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    _, config = city_config(tmp_path)
    resources = tmp_path / "resources"
    shutil.copytree(REPO / "resources" / "policy", resources / "policy")
    shutil.copytree(REPO / "resources" / "trust", resources / "trust")
    build.lay_config(resources, config)
    assert (resources / "trust" / "city-ca.pem").read_bytes() == (
        config / "trust" / "city-ca.pem").read_bytes()
    assert buildconfig.demo_findings(resources) == []


@pytest.mark.parametrize(("make", "refusal"), [
    (lambda: pki.issue(pki.make_ca(), "not a CA").cert_pem, "city_ca_unusable"),
    (lambda: b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
     "city_ca_unusable"),
    (lambda: pki.issue(pki.make_ca(), "Old City CA", is_ca=True,
                       not_before=datetime(2020, 1, 1, tzinfo=UTC),
                       not_after=datetime(2021, 1, 1, tzinfo=UTC)).cert_pem, "city_ca_expired"),
    (lambda: pki.make_ca("BYOD DEMO City CA").cert_pem, "demo_city_ca"),
])
def test_city_ca_must_be_a_valid_non_demo_ca(city: CityFiles, tmp_path: Path,
                                             make: Callable[[], bytes], refusal: str) -> None:
    bad = tmp_path / "bad-ca.pem"
    bad.write_bytes(make())
    with pytest.raises(buildconfig.ConfigRefused) as exc:
        buildconfig.make_config(city.policy, [city.pub], tmp_path / "out", city_ca=bad)
    assert _refusal(exc) == refusal
    assert not (tmp_path / "out").exists()


def test_demo_scan_flags_a_demo_city_ca_in_the_payload(tmp_path: Path) -> None:
    _, config = city_config(tmp_path)
    (config / "trust").chmod(0o755)
    (config / "trust" / "city-ca.pem").chmod(0o644)
    (config / "trust" / "city-ca.pem").write_bytes(pki.make_ca("DEMO City CA").cert_pem)
    assert any("trust/city-ca.pem: city CA refused" in f
               for f in buildconfig.demo_findings(config))
    with pytest.raises(buildconfig.ConfigRefused):
        buildconfig.check_config(config)


def test_the_repositorys_resources_are_demo() -> None:
    found = buildconfig.demo_findings(REPO / "resources")
    assert any("trust/demo-DEMO.pub" in f for f in found)
    assert any("policy/demo-policy.toml" in f for f in found)


def test_cli_build_config(city: CityFiles, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "config"
    base = ["build-config", "--policy", str(city.policy), "--out", str(out)]
    assert admin.main([*base, "--trust", str(city.pub), "--gateway-ca", str(city.ca),
                       "--helpdesk-key", str(city.helpdesk), "--city-ca", str(city.city_ca)]) == 0
    assert (out / "trust" / "city-ca.pem").is_file()
    assert "city-example" in capsys.readouterr().out
    assert admin.main([*base[:-1], str(tmp_path / "c2"), "--trust", str(DEMO_PUB)]) == 2
    err = capsys.readouterr().err
    assert "demo-DEMO.pub" in err
