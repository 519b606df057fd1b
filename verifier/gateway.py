"""The gateway side: HAProxy's runtime API (stats socket, level admin) and the files it reads.

Admission is the map ``users.map`` (``user be_<pc>``), read by the frontend's
``use_backend %[ssl_c_s_dn(cn),map(users.map)]``. The file is rewritten atomically (so a HAProxy
restart sees the current admissions) and the running process is told with ``set map`` /
``add map`` / ``del map`` (new connections only). Ending a live session is
``shutdown sessions server be_<pc>/<pc>``: every user has their own office PC, so their own
backend server. See RECIPES.md "Gateway with enforcement" and installer/gateway/haproxy.cfg.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from verifier.config import GatewayConfig
from verifier.db import Assignment
from verifier.messages import PC_RE

log = logging.getLogger("verifier.gateway")


class _HasUserPc(Protocol):
    @property
    def user(self) -> str: ...
    @property
    def pc_id(self) -> str: ...


def backend_name(pc_id: str) -> str:
    if not PC_RE.fullmatch(pc_id):
        raise ValueError(f"office PC id {pc_id[:70]!r} is not [A-Za-z0-9_.-]")
    return f"be_{pc_id}"


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def map_text(live: Iterable[_HasUserPc]) -> str:
    lines = ["# Written by byod-verifier: users admitted now (user backend). Do not edit.\n"]
    lines += [f"{s.user} {backend_name(s.pc_id)}\n" for s in sorted(live, key=lambda s: s.user)]
    return "".join(lines)


def backends_text(assignments: Sequence[Assignment]) -> str:
    """One backend per office PC; ``byod-verifier gateway render`` writes it (reload HAProxy)."""
    out = ["# Written by byod-verifier gateway render from the assignments. Do not edit.\n"]
    for pc in sorted({(a.pc_id, a.host, a.port) for a in assignments}):
        pc_id, host, port = pc
        out.append(f"\nbackend {backend_name(pc_id)}\n    server {pc_id} {host}:{port}\n")
    return "".join(out)


def nginx_map_text(assignments: Sequence[Assignment]) -> str:
    """The map of installer/gateway/nginx-stream-posture.conf: verified subject -> office PC."""
    out = ["# Written by byod-verifier gateway render --nginx. Do not edit.\n"]
    for a in sorted(assignments, key=lambda a: a.user):
        backend_name(a.pc_id)  # the same name rules as for HAProxy
        out.append(f'"CN={a.user},OU={a.pc_id}" {a.host}:{a.port};\n')
    return "".join(out)


def runtime_command(sock_path: Path, command: str, timeout: float = 3.0) -> str:
    """One command on the HAProxy stats socket (non-interactive mode: it closes after)."""
    if "\n" in command:
        raise ValueError("one line per command")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        s.sendall(command.encode("utf-8") + b"\n")
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


class Gateway:
    """HAProxy when configured; with nothing configured every call only logs (admission-only
    gateways such as nginx stream rely on the credential's short lifetime)."""

    def __init__(self, cfg: GatewayConfig) -> None:
        self.cfg = cfg

    def _cmd(self, command: str) -> str:
        if self.cfg.admin_socket is None:
            return ""
        try:
            answer = runtime_command(self.cfg.admin_socket, command)
        except OSError as exc:
            log.error("gateway runtime API %s: %s failed: %s", self.cfg.admin_socket,
                      command.split()[0:2], exc)
            return ""
        log.info("gateway: %s -> %s", command, answer.strip()[:200] or "ok")
        return answer

    def _write_map(self, live: Iterable[_HasUserPc]) -> None:
        if self.cfg.map_file is not None:
            atomic_write_text(self.cfg.map_file, map_text(live))

    def admit(self, user: str, pc_id: str, live: Iterable[_HasUserPc]) -> None:
        self._write_map(live)
        if self.cfg.map_file is None:
            return
        m, be = self.cfg.map_file, backend_name(pc_id)
        answer = self._cmd(f"set map {m} {user} {be}")
        if answer.strip():  # "entry not found": not yet in the running map
            self._cmd(f"add map {m} {user} {be}")

    def revoke(self, user: str, pc_id: str, live: Iterable[_HasUserPc]) -> None:
        self._write_map(live)
        if self.cfg.map_file is not None:
            self._cmd(f"del map {self.cfg.map_file} {user}")
        be = backend_name(pc_id)
        self._cmd(f"shutdown sessions server {be}/{pc_id}")
