"""A real software TPM for tests: swtpm (fresh --tpmstate per use, a free port pair) behind
tpm2-abrmd on a private D-Bus session bus (RECIPES.md "Software TPM": without a resource manager
swtpm has 3 object slots, and tpm2-openssl's TLS use needs more).

``session_bus(tmp)`` runs one private D-Bus for a whole test session (GLib caches the session bus
connection per process, so every abrmd of the session shares it, each under its own name);
``running(tmp, bus)`` yields the TCTI string for ``BYOD_TPM_TCTI``; everything is stopped by its
PID afterwards. Every wait is bounded.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

TOOLS = ("swtpm", "tpm2-abrmd", "dbus-daemon")


def available() -> bool:
    if not all(shutil.which(t) or Path("/usr/sbin", t).exists() for t in TOOLS):
        return False
    try:
        import tpm2_pytss  # type: ignore[import-untyped, unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


def _free_pair() -> int:
    for _ in range(200):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return int(port)
    raise RuntimeError("no free port pair")


def _wait(check: object, what: str, proc: subprocess.Popen[bytes], log: Path,
          timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text(errors='replace')[-1500:]}")
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout} s")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass(frozen=True)
class Tpm:
    tcti: str  # for BYOD_TPM_TCTI / TPM2OPENSSL_TCTI
    bus_address: str
    state_dir: Path

    def env(self) -> dict[str, str]:
        return {"BYOD_TPM_TCTI": self.tcti, "DBUS_SESSION_BUS_ADDRESS": self.bus_address}


@contextmanager
def session_bus(work: Path) -> Iterator[str]:
    work.mkdir(parents=True, exist_ok=True)
    bus = work / "bus"
    address = f"unix:path={bus}"
    blog = work / "dbus.log"
    with blog.open("wb") as fh:
        proc = subprocess.Popen(["dbus-daemon", "--session", "--nofork", f"--address={address}"],
                                stdout=fh, stderr=subprocess.STDOUT)
    try:
        _wait(bus.exists, "dbus-daemon", proc, blog)
        yield address
    finally:
        _stop(proc)


@contextmanager
def running(work: Path, address: str) -> Iterator[Tpm]:
    work.mkdir(parents=True, exist_ok=True)
    state = work / "tpmstate"
    state.mkdir()
    port = _free_pair()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        log = work / "swtpm.log"
        with log.open("wb") as fh:
            procs.append(subprocess.Popen(
                ["swtpm", "socket", "--tpm2",
                 "--server", f"type=tcp,port={port},bindaddr=127.0.0.1",
                 "--ctrl", f"type=tcp,port={port + 1},bindaddr=127.0.0.1",
                 "--tpmstate", f"dir={state}", "--flags", "not-need-init,startup-clear"],
                stdout=fh, stderr=subprocess.STDOUT))
        _wait(lambda: _port_open(port), "swtpm", procs[-1], log)
        name = f"com.intel.tss2.Tabrmd.t{secrets.token_hex(4)}"
        alog = work / "abrmd.log"
        env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": address}
        with alog.open("wb") as fh:
            procs.append(subprocess.Popen(
                ["tpm2-abrmd", "--session", "--allow-root", "--flush-all",
                 f"--dbus-name={name}", f"--tcti=swtpm:host=127.0.0.1,port={port}"],
                stdout=fh, stderr=subprocess.STDOUT, env=env))
        tcti = f"tabrmd:bus_name={name},bus_type=session"

        def owned() -> bool:
            out = subprocess.run(["dbus-send", "--session", "--print-reply",
                                  "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                                  "org.freedesktop.DBus.NameHasOwner", f"string:{name}"],
                                 env=env, capture_output=True, text=True, timeout=5, check=False)
            return "boolean true" in out.stdout
        _wait(owned, "tpm2-abrmd", procs[-1], alog)
        yield Tpm(tcti, address, state)
    finally:
        for p in reversed(procs):
            _stop(p)
