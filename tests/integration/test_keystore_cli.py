"""`byod-agent cert ...` as a user runs it: a child process with its own HOME and D-Bus session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization

from testkit.pki import CA, issue, p12
from tests.conftest import REPO, require, require_tool
from tests.integration import secret_service

pytestmark = pytest.mark.real
PASSWORD = "市役所-p12"


def _cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    return subprocess.run([sys.executable, "-m", "agent", "cert", *args], input=stdin,
                          env={**base, **env}, cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_import_show_remove_under_a_real_secret_service(tmp_path: Path) -> None:
    require(secret_service.available(), "dbus-daemon/gnome-keyring-daemon not installed")
    user = issue(CA, "Yamada Taro")
    p12_file = tmp_path / "user.p12"
    p12_file.write_bytes(p12(user, PASSWORD.encode(), legacy=True, extra=(CA.cert,)))
    with secret_service.running(tmp_path / "home") as ss:
        env = ss.env()
        wrong = _cli(env, "--lang", "en", "import", str(p12_file), "--password-stdin",
                     stdin="wrong\n")
        assert wrong.returncode == 2
        assert "password is wrong" in wrong.stderr
        assert not (ss.home / ".local/share/byod-agent").exists()

        done = _cli(env, "--lang", "ja", "import", str(p12_file), "--password-stdin",
                    stdin=PASSWORD + "\n")
        assert done.returncode == 0, done.stderr
        assert "証明書を取り込みました" in done.stdout

        shown = _cli(env, "show", "--json")
        assert shown.returncode == 0, shown.stderr
        data = json.loads(shown.stdout)
        assert data["state"] == "ok"
        assert data["subject"] == user.cert.subject.rfc4514_string()
        assert data["backend"] == "keyring.backends.SecretService.Keyring"
        assert data["sha256"].replace(":", "").lower() == user.cert.fingerprint(
            hashes.SHA256()).hex()
        assert data["days_left"] >= 363
        assert (ss.home / ".local/share/byod-agent/keystore/device-key.p8.pem").exists()
        assert secret_service.plaintext_private_keys(ss.home) == []

        text = _cli(env, "--lang", "en", "show")
        assert "Ready" in text.stdout and "Yamada Taro" in text.stdout

        removed = _cli(env, "remove")
        assert removed.returncode == 0, removed.stderr
        assert json.loads(_cli(env, "show", "--json").stdout)["state"] == "not_enrolled"
    assert secret_service.plaintext_private_keys(tmp_path) == []


def test_without_a_secret_service_import_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    p12_file = tmp_path / "user.p12"
    p12_file.write_bytes(p12(issue(CA, "Yamada Taro"), PASSWORD.encode()))
    env = {"HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
           "XDG_CONFIG_HOME": str(home / "config")}  # no DBUS_SESSION_BUS_ADDRESS
    for lang, needle in (("en", "No secure password store"), ("ja", "パスワード保管庫")):
        result = _cli(env, "--lang", lang, "import", str(p12_file), "--password-stdin",
                      stdin=PASSWORD + "\n")
        assert result.returncode == 2
        assert needle in result.stderr
        # Only the agent's own log (which records the refusal for the help desk) may appear.
        log_dir = home / ".local/state/byod-agent/log"
        assert {p for p in _files(home) if log_dir not in p.parents} == set()
    assert json.loads(_cli(env, "show", "--json").stdout)["state"] == "not_enrolled"


def test_rc2_pkcs12_from_openssl_legacy_imports(tmp_path: Path) -> None:
    """`openssl pkcs12 -export -legacy` (RC2-40 certificates, 3DES key), as old CA tools write."""
    require_tool("openssl")
    require(secret_service.available(), "dbus-daemon/gnome-keyring-daemon not installed")
    work = tmp_path / "work"
    work.mkdir()
    user = issue(CA, "Suzuki Hanako")
    (work / "user.pem").write_bytes(user.cert_pem)
    (work / "key.pem").write_bytes(user.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"keypass")))
    made = subprocess.run(
        ["openssl", "pkcs12", "-export", "-legacy", "-in", str(work / "user.pem"),
         "-inkey", str(work / "key.pem"), "-passin", "pass:keypass", "-passout",
         f"pass:{PASSWORD}", "-out", str(work / "legacy.p12")],
        capture_output=True, text=True, timeout=30, check=False)
    require(made.returncode == 0, f"openssl has no legacy provider: {made.stderr.strip()}")
    info = subprocess.run(["openssl", "pkcs12", "-info", "-noout", "-legacy", "-in",
                           str(work / "legacy.p12"), "-passin", f"pass:{PASSWORD}"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert "RC2" in info.stderr + info.stdout
    with secret_service.running(tmp_path / "home") as ss:
        result = _cli(ss.env(), "import", str(work / "legacy.p12"), "--password-stdin",
                      stdin=PASSWORD + "\n")
        assert result.returncode == 0, result.stderr
        assert json.loads(_cli(ss.env(), "show", "--json").stdout)["state"] == "ok"
        assert secret_service.plaintext_private_keys(ss.home) == []
