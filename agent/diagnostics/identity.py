"""The names that identify this user and PC, so the redactor can replace them everywhere."""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import sys
from pathlib import Path


def local_identities() -> tuple[list[str], list[str]]:
    users: set[str] = set()
    hosts: set[str] = set()
    with contextlib.suppress(Exception):
        users.add(getpass.getuser())
    for var in ("USER", "LOGNAME", "USERNAME"):
        if os.environ.get(var):
            users.add(os.environ[var])
    users.add(Path.home().name)
    if sys.platform != "win32":  # Windows: USERNAME above
        import pwd  # noqa: PLC0415 (POSIX only)

        with contextlib.suppress(KeyError):
            entry = pwd.getpwuid(os.getuid())
            users.add(entry.pw_name)
            full = entry.pw_gecos.split(",")[0].strip()
            if full:  # the real name, e.g. "Yamada Taro"
                users.add(full)
    hosts.add(socket.gethostname())
    with contextlib.suppress(OSError):
        hosts.add(socket.getfqdn())
    for var in ("COMPUTERNAME", "USERDOMAIN", "HOSTNAME"):
        if os.environ.get(var):
            hosts.add(os.environ[var])
    # Generic account names would erase useful words ("root" stays readable in paths only).
    users -= {"", "root", "user", "admin", "administrator"}
    hosts -= {"", "localhost", "localhost.localdomain"}
    return sorted(users), sorted(hosts)
