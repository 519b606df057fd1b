"""Debian/Ubuntu: pending updates from a simulated ``apt-get dist-upgrade``.

Why ``dist-upgrade`` and not ``upgrade``: ``apt-get upgrade`` never installs new packages, so a
kernel security fix that arrives as a new ABI package (``linux-image-6.1.0-NN-amd64`` pulled by the
``linux-image-amd64`` meta-package) or any fix that needs a new dependency is only "kept back" and
has no ``Inst`` line: the count would miss exactly the fixes that matter. ``-s`` only simulates,
needs no root, and ``Debug::NoLocking`` keeps an unprivileged run from touching the dpkg lock.

Output lines look like (C locale):
``Inst libssl3 [3.0.19-1~deb12u2] (3.0.22-1~deb12u2 Debian-Security:12/oldstable-security [amd64])``
``Inst curl (7.81.0-1ubuntu1.18 Ubuntu:22.04/jammy-updates, Ubuntu:22.04/jammy-security [amd64])``
The origin list says where the candidate comes from; it is a security update when an origin is
``Debian-Security`` or its archive ends in ``-security`` (Ubuntu's ``jammy-security``, ESM's
``jammy-apps-security``). Package names are never used to decide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from agent.core.errors import ParseError

APT_LISTS = "/var/lib/apt/lists"
# What `apt update` writes: InRelease (signed) or Release (+ .gpg, or flat file: repositories).
APT_LIST_STAMPS = ("*InRelease", "*_Release")

_INST = re.compile(r"^Inst (?P<name>\S+) (?:\[(?P<old>[^\]]*)\] )?"
                   r"\((?P<new>\S+)(?: (?P<origins>.*?))? \[(?P<arch>[^\]]+)\]\)")
# apt < 2.8: "3 upgraded, 1 newly installed, ...";
# apt >= 2.8: "3 to upgrade, 1 to newly install, ..."
_SUMMARY = re.compile(r"^\d+ (?:upgraded|to upgrade), \d+ (?:newly installed|to newly install), ")


@dataclass(frozen=True)
class AptPackage:
    name: str
    installed: str | None  # None: a new package (e.g. a new kernel ABI)
    candidate: str
    origins: tuple[str, ...]
    security: bool


@dataclass(frozen=True)
class AptSimulation:
    packages: tuple[AptPackage, ...]

    @property
    def security(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.packages if p.security)


def is_security_origin(origin: str) -> bool:
    """'Debian-Security:12/oldstable-security' or 'Ubuntu:22.04/jammy-security' -> True."""
    label, _, rest = origin.strip().partition(":")
    archive = rest.rpartition("/")[2]
    return label.lower() == "debian-security" or archive.lower().endswith("-security")


def parse_apt_simulation(text: str) -> AptSimulation:
    """Every ``Inst`` line of ``apt-get -s`` output; the summary line must be there.

    Empty or truncated output has no summary line and is an error, never "nothing to install".
    """
    packages: list[AptPackage] = []
    summary = False
    for line in text.splitlines():
        if _SUMMARY.match(line):
            summary = True
        if not line.startswith("Inst "):
            continue
        m = _INST.match(line)
        if m is None:
            raise ParseError("apt-get -s", f"unexpected line: {line[:120]}")
        origins = tuple(o.strip() for o in (m["origins"] or "").split(",") if o.strip())
        packages.append(AptPackage(m["name"], m["old"], m["new"], origins,
                                   any(is_security_origin(o) for o in origins)))
    if not summary:
        raise ParseError("apt-get -s", "no summary line (output empty or cut short)")
    return AptSimulation(tuple(packages))


def apt_command(root: Path) -> list[str]:
    """The simulation; a test root doubles as apt's root so a real apt can run on a fake system."""
    argv = ["apt-get", "-s", "-o", "Debug::NoLocking=1"]
    if root != Path("/"):
        # Dir::State::status is absolute by default, so it must move along with Dir.
        argv += ["-o", f"Dir={root}/", "-o", f"Dir::State::status={root}/var/lib/dpkg/status"]
    return [*argv, "dist-upgrade"]
