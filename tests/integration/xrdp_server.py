"""A real xrdp + xrdp-sesman on loopback as the "office PC", and an Xvfb display for xfreerdp.

Recipe (../shared/RECIPES.md): copy the packaged configs, move the port and the logs into a
scratch directory, turn syslog off, give sesman a PAM user whose session is ``exec xclock``.
xrdp's own log at DEBUG lists the static channels the client asked for ("Adding channel: name
rdpdr"): that is the assertion for "no clipboard channel". Traps found here: xrdp offers TLS but
not NLA (CredSSP), so a client forced to ``/sec:nla`` cannot log in; sesman's port (3350) and
chansrv's config come from /etc/xrdp, so only one instance runs at a time; FreeRDP 2.11 reads a
password from stdin only when the user name is on its command line (stdio buffering).

One xrdp per test run, whatever else runs on the machine (fixed 2026-12-01: a stale
``xrdp-sesman`` left by another run took our logins, so "Session started" went to its log
and the e2e stalled). xrdp 0.9.21 reads sesman's port from the compiled-in
``/etc/xrdp/sesman.ini`` (not from ``-c``) and keeps its sockets in the compiled-in
``/run/xrdp/sockdir``; so sesman and xrdp run in a private mount namespace (``unshare -m``)
where our ``sesman.ini`` (a free ``ListenPort``, its own display offset) is bind-mounted over
``/etc/xrdp/sesman.ini`` and a scratch directory over ``/run/xrdp``. The network namespace
stays the host's: the gateway reaches xrdp on loopback as before. The PAM user is per run too
(``byodrdp`` + 6 hex), so no run changes another's password or kills its desktop; it is
deleted at the end.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
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


def _make_user(password: str) -> str:
    """A PAM user of this run only; its session is ``exec xclock``."""
    user = USER + secrets.token_hex(3)
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", user], check=True, capture_output=True)
    subprocess.run(["chpasswd"], input=f"{user}:{password}\n".encode(), check=True)
    home = Path("/home") / user
    (home / ".xsession").write_text("exec xclock\n")
    (home / ".xsession").chmod(0o755)
    shutil.chown(home / ".xsession", user)
    return user


def _remove_user(user: str) -> None:
    # Only this run's user: its desktop (Xorg, xclock, chansrv) dies with it.
    subprocess.run(["pkill", "-KILL", "-u", user], capture_output=True, check=False)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and subprocess.run(
            ["pgrep", "-u", user], capture_output=True, check=False).returncode == 0:
        time.sleep(0.05)
    subprocess.run(["userdel", "-r", "-f", user], capture_output=True, check=False)


def _wait_sesman(port: int, proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    # sesman's "ListenAddress=127.0.0.1" binds ::1 when IPv6 is up (seen here: ss shows
    # [::1]:3350), and xrdp connects the same way: accept either loopback.
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        for host in ("::1", "127.0.0.1"):
            with contextlib.suppress(OSError):
                socket.create_connection((host, port), timeout=0.5).close()
                return
        time.sleep(0.05)
    raise RuntimeError(f"xrdp-sesman does not listen on {port} (rc {proc.poll()})")


def _private_ns(root: Path) -> list[str]:
    """argv prefix: a private mount namespace where our sesman.ini and sockdir are xrdp's."""
    return ["unshare", "-m", "--propagation", "private", "--", "sh", "-c",
            'mount --bind "$0" /etc/xrdp/sesman.ini && mount --bind "$1" /run/xrdp'
            ' && shift && exec "$@"', str(root / "sesman.ini"), str(root / "run")]


@contextlib.contextmanager
def running(root: Path) -> Iterator[Xrdp]:
    require_tool(*TOOLS)
    require(os.geteuid() == 0, "xrdp's PAM login needs root to create the test user")
    require(Path("/usr/lib/xorg/Xorg").exists(), "xorgxrdp / Xorg not installed")
    require(shutil.which("unshare") is not None and shutil.which("nsenter") is not None,
            "util-linux unshare/nsenter not installed")
    password = "Rdp-" + secrets.token_urlsafe(12)
    cert = issue(make_ca("Office PC self-issued"), OFFICE_HOST, dns=(OFFICE_HOST,),
                 key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
                 usages=(ExtendedKeyUsageOID.SERVER_AUTH,))
    (root / "cert.pem").write_bytes(cert.cert_pem)
    (root / "key.pem").write_bytes(cert.key_pem())
    (root / "key.pem").chmod(0o600)
    port, sesman_port = free_port(), free_port()
    _ini(Path("/etc/xrdp/xrdp.ini"), root / "xrdp.ini",
         {"certificate": str(root / "cert.pem"), "key_file": str(root / "key.pem"),
          "LogFile": str(root / "xrdp.log"), "LogLevel": "DEBUG", "EnableSyslog": "false"},
         {"Globals": {"port": f"tcp://127.0.0.1:{port}"}})  # [Xorg] port=-1 must stay
    # Displays from 200 up: away from the Xvfb range (90-140) and from a stock sesman (10).
    _ini(Path("/etc/xrdp/sesman.ini"), root / "sesman.ini",
         {"LogFile": str(root / "sesman.log"), "EnableSyslog": "false"},
         {"Globals": {"ListenAddress": "127.0.0.1", "ListenPort": str(sesman_port)},
          "Sessions": {"KillDisconnected": "true", "DisconnectedTimeLimit": "0",
                       "X11DisplayOffset": str(200 + secrets.randbelow(400))}})
    sockdir = root / "run" / "sockdir"
    sockdir.mkdir(parents=True)
    sockdir.chmod(0o3777)
    Path("/run/xrdp").mkdir(parents=True, exist_ok=True)  # the mount point
    user = _make_user(password)
    sesman = xrdp = None
    try:
        sesman = subprocess.Popen([*_private_ns(root), "xrdp-sesman", "-n", "-c",
                                   str(root / "sesman.ini")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_sesman(sesman_port, sesman)
        # Same namespace as sesman (nsenter execs: the PID is xrdp's).
        xrdp = subprocess.Popen(["nsenter", f"--mount=/proc/{sesman.pid}/ns/mnt", "--",
                                 "xrdp", "-n", "-c", str(root / "xrdp.ini")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port, xrdp)
        yield Xrdp(port, root, user, password, cert)
    finally:
        if xrdp is not None:
            stop(xrdp)
        if sesman is not None:
            stop(sesman)
        _remove_user(user)


@contextlib.contextmanager
def xvfb(log_dir: Path) -> Iterator[str]:
    """An X display for xfreerdp (it needs one even for ``/version``); yields its name."""
    require_tool("Xvfb", "xdpyinfo")
    with x_display(free_display(range(90, 140)), log_dir, size=(1024, 768)) as env:
        yield env["DISPLAY"]
