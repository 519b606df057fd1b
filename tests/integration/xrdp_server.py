"""A real xrdp + xrdp-sesman on loopback as the "office PC", and an Xvfb display for xfreerdp.

Recipe (../shared/RECIPES.md): copy the packaged configs, move the port and the logs into a
scratch directory, turn syslog off, give sesman a PAM user whose session is ``exec xclock``.
xrdp's own log at DEBUG lists the static channels the client asked for ("Adding channel: name
rdpdr"): that is the assertion for "no clipboard channel". Traps found here: xrdp offers TLS but
not NLA (CredSSP), so a client forced to ``/sec:nla`` cannot log in; sesman's port (3350) and
chansrv's config come from /etc/xrdp, so only one instance runs at a time; FreeRDP 2.11 reads a
password from stdin only when the user name is on its command line (stdio buffering).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from testkit.gateway import free_port, wait_port
from testkit.pki import Pair, issue, make_ca
from testkit.procs import stop
from testkit.xdisplay import free_display, x_display
from tests.conftest import require, require_tool

USER = "byodrdp"
OFFICE_HOST = "office-pc-0001.city.test"
TOOLS = ("xrdp", "xrdp-sesman", "xfreerdp", "Xvfb", "xdpyinfo", "xclock")


@dataclass(frozen=True)
class Xrdp:
    port: int
    root: Path
    user: str
    password: str
    cert: Pair

    @property
    def cert_sha256(self) -> str:
        return self.cert.cert.fingerprint(hashes.SHA256()).hex()

    def log(self) -> str:
        p = self.root / "xrdp.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def sesman_log(self) -> str:
        p = self.root / "sesman.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def channels(self) -> list[str]:
        return re.findall(r"Adding channel: name (\w+)", self.log())

    def logged_in(self) -> bool:
        return f"login successful for user {self.user}" in self.log()


def _ini(src: Path, dst: Path, changes: dict[str, str], sections: dict[str, dict[str, str]]
         ) -> None:
    """Copy an xrdp ini, replacing ``key=`` lines (globally or only inside a section)."""
    out, section = [], ""
    for line in src.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        key = line.split("=", 1)[0] if "=" in line and not line.startswith((";", "#")) else None
        if key is not None and key in sections.get(section, {}):
            out.append(f"{key}={sections[section][key]}")
        elif key is not None and key in changes:
            out.append(f"{key}={changes[key]}")
        else:
            out.append(line)
    dst.write_text("\n".join(out) + "\n")


def _ensure_user(password: str) -> None:
    if subprocess.run(["id", USER], capture_output=True, check=False).returncode != 0:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], check=True)
    subprocess.run(["chpasswd"], input=f"{USER}:{password}\n".encode(), check=True)
    home = Path("/home") / USER
    (home / ".xsession").write_text("exec xclock\n")
    (home / ".xsession").chmod(0o755)
    shutil.chown(home / ".xsession", USER)


def _kill_user_sessions() -> None:
    subprocess.run(["pkill", "-KILL", "-u", USER], capture_output=True, check=False)


@contextlib.contextmanager
def running(root: Path) -> Iterator[Xrdp]:
    require_tool(*TOOLS)
    require(os.geteuid() == 0, "xrdp's PAM login needs root to create the test user")
    require(Path("/usr/lib/xorg/Xorg").exists(), "xorgxrdp / Xorg not installed")
    password = "Rdp-" + secrets.token_urlsafe(12)
    _ensure_user(password)
    _kill_user_sessions()
    cert = issue(make_ca("Office PC self-issued"), OFFICE_HOST, dns=(OFFICE_HOST,),
                 key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
                 usages=(ExtendedKeyUsageOID.SERVER_AUTH,))
    (root / "cert.pem").write_bytes(cert.cert_pem)
    (root / "key.pem").write_bytes(cert.key_pem())
    (root / "key.pem").chmod(0o600)
    port = free_port()
    _ini(Path("/etc/xrdp/xrdp.ini"), root / "xrdp.ini",
         {"certificate": str(root / "cert.pem"), "key_file": str(root / "key.pem"),
          "LogFile": str(root / "xrdp.log"), "LogLevel": "DEBUG", "EnableSyslog": "false"},
         {"Globals": {"port": f"tcp://127.0.0.1:{port}"}})  # [Xorg] port=-1 must stay
    _ini(Path("/etc/xrdp/sesman.ini"), root / "sesman.ini",
         {"LogFile": str(root / "sesman.log"), "EnableSyslog": "false"},
         {"Sessions": {"KillDisconnected": "true", "DisconnectedTimeLimit": "0"}})
    sockdir = Path("/run/xrdp/sockdir")
    sockdir.mkdir(parents=True, exist_ok=True)
    sockdir.chmod(0o3777)
    sesman = subprocess.Popen(["xrdp-sesman", "-n", "-c", str(root / "sesman.ini")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    xrdp = subprocess.Popen(["xrdp", "-n", "-c", str(root / "xrdp.ini")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, xrdp)
        yield Xrdp(port, root, USER, password, cert)
    finally:
        stop(xrdp)
        stop(sesman)
        _kill_user_sessions()


@contextlib.contextmanager
def xvfb(log_dir: Path) -> Iterator[str]:
    """An X display for xfreerdp (it needs one even for ``/version``); yields its name."""
    require_tool("Xvfb", "xdpyinfo")
    with x_display(free_display(range(90, 140)), log_dir, size=(1024, 768)) as env:
        yield env["DISPLAY"]
