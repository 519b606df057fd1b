"""A real Secret Service for keystore tests: a private D-Bus session bus plus gnome-keyring.

Everything lives under a scratch HOME: the bus socket, the keyring files, XDG dirs. Both daemons
run in the foreground and are stopped by PID. ``unlock=False`` leaves the login keyring locked
(no prompter can answer here), which is how the "locked keyring" state is exercised for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from testkit.procs import stop

PASSWORD = b"login-keyring-test-password"
SERVICE_NAME = "org.freedesktop.secrets"


@dataclass(frozen=True)
class SecretService:
    home: Path
    bus_address: str

    def env(self) -> dict[str, str]:
        """The environment a child process needs to reach this Secret Service."""
        return {
            "HOME": str(self.home),
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "XDG_STATE_HOME": str(self.home / ".local" / "state"),
            "XDG_RUNTIME_DIR": str(self.home / "run"),
            "DBUS_SESSION_BUS_ADDRESS": self.bus_address,
        }


def available() -> bool:
    return all(shutil.which(t) for t in ("dbus-daemon", "gnome-keyring-daemon", "dbus-send"))


def _has_owner(env: dict[str, str], name: str) -> bool:
    proc = subprocess.run(
        ["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
         "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", f"string:{name}"],
        env=env, capture_output=True, text=True, timeout=5, check=False)
    return proc.returncode == 0 and "boolean true" in proc.stdout


@contextmanager
def running(home: Path, *, unlock: bool = True) -> Iterator[SecretService]:
    for sub in (".local/share", ".config", ".cache", ".local/state", "run"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    (home / "run").chmod(0o700)
    socket = home / "run" / "bus"
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1",
         f"--address=unix:path={socket}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=base)
    keyring: subprocess.Popen[bytes] | None = None
    try:
        assert bus.stdout is not None
        address = bus.stdout.readline().decode().strip()
        if not address:
            raise RuntimeError("dbus-daemon printed no address")
        service = SecretService(home, address)
        env = {**base, **service.env()}
        argv = ["gnome-keyring-daemon", "--foreground", "--components=secrets"]
        if unlock:
            argv.insert(2, "--unlock")
        keyring = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, env=env)
        assert keyring.stdin is not None
        if unlock:
            keyring.stdin.write(PASSWORD)
        keyring.stdin.close()
        deadline = time.monotonic() + 15
        while not _has_owner(env, SERVICE_NAME):
            if keyring.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gnome-keyring-daemon did not take org.freedesktop.secrets")
            time.sleep(0.1)
        yield service
    finally:
        if keyring is not None:
            stop(keyring, timeout=5)
        stop(bus, timeout=5)
        with suppress(OSError):
            socket.unlink()


_PLAIN_PEM = (b"-----BEGIN PRIVATE KEY-----", b"-----BEGIN EC PRIVATE KEY-----",
              b"-----BEGIN RSA PRIVATE KEY-----")


def plaintext_private_keys(root: Path) -> list[Path]:
    """Every file under ``root`` holding a private key readable without a password (PEM or DER)."""
    from cryptography.hazmat.primitives import serialization

    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        if any(marker in data for marker in _PLAIN_PEM):
            found.append(path)
            continue
        with suppress(ValueError, TypeError):
            serialization.load_der_private_key(data, password=None)
            found.append(path)
    return found
