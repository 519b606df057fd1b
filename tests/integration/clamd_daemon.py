"""A real clamd on a tiny local database, in the foreground, with everything in a scratch directory.

freshclam cannot reach its servers here and clamd refuses to start without a database, so the
database is built locally: one MD5 signature for the EICAR test file, packed by ``sigtool`` into an
unsigned ``daily.cud`` that carries a version and a build date. Running sigtool under ``faketime``
back-dates the build, which is what a stale database looks like to clamd's ``VERSION``.
Traps: sigtool --build needs a COPYING file in the working directory; it reads the builder name
from stdin.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from testkit.procs import stop

TOOLS = ("clamd", "sigtool", "clamdscan", "faketime")
EICAR = (rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")
EICAR_MD5 = "44d88612fea8a8f36de82e1278abb02f"


@dataclass(frozen=True)
class Clamd:
    pid: int
    socket: Path
    config: Path
    directory: Path


def available() -> bool:
    return all(shutil.which(t) for t in TOOLS)


def build_database(directory: Path, cvd_version: int, built_at: datetime | None = None) -> Path:
    """``daily.cud`` with one signature; ``built_at`` back-dates it through faketime."""
    work = directory / "build"
    work.mkdir(parents=True)
    (work / "COPYING").write_text("Test signatures for BYOD Agent, public domain.\n")
    (work / "daily.hdb").write_text(f"{EICAR_MD5}:{len(EICAR)}:Eicar-Test-Signature-Local\n")
    argv = ["sigtool", "--build=daily.cud", "--unsigned", f"--cvd-version={cvd_version}",
            "--datadir=."]
    if built_at is not None:
        argv = ["faketime", built_at.strftime("%Y-%m-%d %H:%M:%S"), *argv]
    subprocess.run(argv, cwd=work, input=b"byod-agent-tests\n", capture_output=True, timeout=60,
                   check=True)
    db = directory / "db"
    db.mkdir()
    shutil.copy(work / "daily.cud", db / "daily.cud")
    return db


def _answers(path: Path) -> bool:
    with suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        s.connect(str(path))
        s.sendall(b"zPING\0")
        return s.recv(16).startswith(b"PONG")
    return False


@contextmanager
def running_clamd(cvd_version: int = 27500, built_at: datetime | None = None,
                  startup_timeout: float = 60.0) -> Iterator[tuple[Clamd, subprocess.Popen[bytes]]]:
    # A short directory name: a UNIX socket path must stay under 108 bytes.
    directory = Path(tempfile.mkdtemp(prefix="clamd-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        db = build_database(directory, cvd_version, built_at)
        sock = directory / "clamd.sock"
        config = directory / "clamd.conf"
        config.write_text(f"Foreground yes\nLocalSocket {sock}\nDatabaseDirectory {db}\n"
                          f"TemporaryDirectory {directory}\nLogFile {directory / 'clamd.log'}\n")
        with (directory / "clamd.out").open("wb") as out:
            proc = subprocess.Popen(["clamd", "-c", str(config)], stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + startup_timeout
        while not _answers(sock):
            if proc.poll() is not None:
                raise RuntimeError("clamd exited: " + (directory / "clamd.out").read_text()[-500:])
            if time.monotonic() > deadline:
                raise RuntimeError("clamd did not answer PING in time")
            time.sleep(0.1)
        yield Clamd(proc.pid, sock, config, directory), proc
    finally:
        if proc is not None:
            stop(proc)
        shutil.rmtree(directory, ignore_errors=True)
