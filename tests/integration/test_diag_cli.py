"""``diag export`` -> ``diag show`` on this machine's real posture; no identity leaves the PC."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import psutil

from tests.conftest import REPO

MY_NUMBER = "123456789018"  # passes the check digit


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120, check=False, stdin=subprocess.DEVNULL)


def _env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home" / "yamada.taro"
    home.mkdir(parents=True)
    env = dict(os.environ)
    env.update(HOME=str(home), USER="yamada.taro", LOGNAME="yamada.taro",
               XDG_STATE_HOME=str(home / ".local/state"), XDG_DATA_HOME=str(home / ".local/share"),
               XDG_CONFIG_HOME=str(home / ".config"), BYOD_AGENT_LANG="en")
    return env


def _plant_log(env: dict[str, str], addresses: list[str]) -> None:
    log_dir = Path(env["XDG_STATE_HOME"]) / "byod-agent" / "log"
    log_dir.mkdir(parents=True)
    host = socket.gethostname()
    lines = [
        f"user yamada.taro on {host} from {' '.join(addresses)}",
        "password=hunter2 Authorization: Bearer abcdefghijklmnopqrstu",
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
        f"ERROR my number {MY_NUMBER} in a form field; mail yamada.taro@city.example.lg.jp",
        f"path {env['HOME']}/Documents/給与.xlsx",
    ]
    (log_dir / "agent.log").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _real_addresses() -> list[str]:
    out = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6) and not a.address.startswith(
                    ("127.", "::1")):
                out.append(a.address.split("%")[0])
            if getattr(psutil, "AF_LINK", None) == a.family and a.address not in (
                    "00:00:00:00:00:00", ""):
                out.append(a.address)
    return out


def test_export_then_show_and_nothing_personal_inside(tmp_path: Path) -> None:
    env = _env(tmp_path)
    addresses = _real_addresses()
    _plant_log(env, addresses)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    exp = _cli("diag", "export", "--yes", "--ticket", "INC-0042", "--out", str(out_dir), env=env)
    assert exp.returncode == 0, exp.stderr
    [bundle_path] = list(out_dir.iterdir())
    assert bundle_path.name.startswith("byod-diag-") and bundle_path.suffix == ".zip"

    zf = zipfile.ZipFile(io.BytesIO(bundle_path.read_bytes()))
    names = set(zf.namelist())
    assert {"summary.txt", "posture.json", "system.json", "manifest.json",
            "logs/agent.log"} <= names
    everything = b"\n".join(zf.read(n) for n in names).decode("utf-8")
    forbidden = ["yamada", socket.gethostname(), "hunter2", "abcdefghijklmnopqrstu",
                 "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", MY_NUMBER, "city.example", *addresses]
    leaked = [f for f in forbidden if f and f in everything]
    assert leaked == []
    summary = zf.read("summary.txt").decode("utf-8")
    assert "INC-0042" in summary and "ディスクの暗号化" in summary and "Disk encryption" in summary

    show = _cli("diag", "show", str(bundle_path), "--json", env=env)
    digest = json.loads(show.stdout)
    assert show.returncode == 1  # readable, hashes match, but unsigned (no certificate enrolled)
    assert digest["verification"]["hashes_ok"] and not digest["verification"]["signed"]
    assert digest["ticket"] == "INC-0042"
    assert {c["id"] for c in digest["checks"]} >= {"disk_encryption", "antivirus"}
    assert any("ERROR" in line for line in digest["log_excerpts"])


def test_without_consent_nothing_is_written(tmp_path: Path) -> None:
    env = _env(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = _cli("diag", "export", "--out", str(out_dir), env=env)
    assert proc.returncode == 2
    assert "--yes" in proc.stderr
    assert list(out_dir.iterdir()) == []


def test_bad_ticket_and_hostile_file_exit_2(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert _cli("diag", "export", "--yes", "--ticket", "a b;rm", env=env).returncode == 2
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 not really")
    proc = _cli("diag", "show", str(junk), env=env)
    assert proc.returncode == 2 and "not a readable" in proc.stderr


def test_enrolled_device_signs_and_the_desk_verifies(tmp_path: Path) -> None:
    """With a certificate in the real keystore, ``diag show`` names the signer and exits 0."""
    from testkit.pki import CA, issue, p12
    from tests.conftest import require
    from tests.integration import secret_service

    require(secret_service.available(), "dbus-daemon/gnome-keyring-daemon not installed")
    user = issue(CA, "Yamada Taro")
    p12_file = tmp_path / "user.p12"
    p12_file.write_bytes(p12(user, b"pw", extra=(CA.cert,)))
    with secret_service.running(tmp_path / "home") as ss:
        env = {**os.environ, **ss.env(), "BYOD_AGENT_LANG": "en"}
        imp = subprocess.run([sys.executable, "-m", "agent", "cert", "import", str(p12_file),
                              "--password-stdin"], input="pw\n", capture_output=True, text=True,
                             cwd=REPO, env=env, timeout=60, check=False)
        assert imp.returncode == 0, imp.stderr
        out_dir = tmp_path / "out"
        out_dir.mkdir()
        assert _cli("diag", "export", "--yes", "--out", str(out_dir), env=env).returncode == 0
        [bundle_path] = list(out_dir.iterdir())
        ca_file = tmp_path / "city-ca.pem"  # the help desk's copy of the city CA (issue 18)
        ca_file.write_bytes(CA.cert_pem)
        unknown = _cli("diag", "show", str(bundle_path), env=env)
        assert unknown.returncode == 1 and "unknown key" in unknown.stdout  # no CA: not named
        show = _cli("diag", "show", str(bundle_path), "--ca", str(ca_file), env=env)
        assert show.returncode == 0, show.stdout + show.stderr
        assert "verified, signed by" in show.stdout and "Yamada Taro" in show.stdout
        # A flipped byte in a signed bundle's member: exit 1, naming the file.
        zf = zipfile.ZipFile(io.BytesIO(bundle_path.read_bytes()))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as out:
            for info in zf.infolist():
                data = zf.read(info)
                if info.filename == "system.json":
                    data = data.replace(b"python", b"pythoN")
                out.writestr(info, data)
        tampered = tmp_path / "tampered.zip"
        tampered.write_bytes(buf.getvalue())
        bad = _cli("diag", "show", str(tampered), env=env)
        assert bad.returncode == 1 and "system.json" in bad.stdout
        assert secret_service.plaintext_private_keys(ss.home) == []


def test_export_reuses_the_tray_workers_fresh_evaluation(tmp_path: Path) -> None:
    """The tray's real worker saves its evaluation (0600); the real export right after puts that
    same report and decision in the bundle (no new posture run), redacted as always."""
    env = _env(tmp_path)
    worker = _cli("evaluate", "--wire", env=env)
    assert worker.returncode == 0, worker.stderr
    last = Path(env["XDG_STATE_HOME"]) / "byod-agent" / "last-evaluation.json"
    assert (last.stat().st_mode & 0o777) == 0o600
    saved = json.loads(last.read_text(encoding="utf-8"))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    exp = _cli("diag", "export", "--yes", "--out", str(out_dir), env=env)
    assert exp.returncode == 0, exp.stderr
    [bundle_path] = list(out_dir.iterdir())
    zf = zipfile.ZipFile(io.BytesIO(bundle_path.read_bytes()))
    posture = json.loads(zf.read("posture.json"))
    decision = json.loads(zf.read("decision.json"))
    assert posture["generated_at"] == saved["report"]["generated_at"]
    assert decision["correlation_id"] == saved["decision"]["correlation_id"]
    assert [c["duration_ms"] for c in posture["checks"]] == \
        [c["duration_ms"] for c in saved["report"]["checks"]]
    everything = b"\n".join(zf.read(n) for n in zf.namelist()).decode("utf-8")
    assert "yamada" not in everything and socket.gethostname() not in everything
