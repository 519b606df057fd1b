"""Fedora/RHEL: pending security updates from ``dnf -q -C check-update --security``.

Exit codes (dnf(8), dnf5 check-upgrade): 100 = updates listed, 0 = none, 1 = error. ``-C`` reads
the system metadata cache only: the agent runs as the staff member, and without ``-C`` dnf would
download a private copy of all metadata (slow, network) for that user. The cache's age is judged
separately, like apt's lists.

Rows are ``name.arch  version  repo``; a long name wraps and puts version and repo on the next,
indented line. Indented rows under "Obsoleting Packages" are installed packages being replaced,
not updates. ``Security: kernel-core-… is an installed security update`` (with
autocheck_running_kernel, dnf's default) means a fixed kernel waits for a reboot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.core.errors import ParseError

DNF_CACHES = ("/var/cache/dnf", "/var/cache/libdnf5")  # dnf 4, dnf 5
DNF_CACHE_STAMPS = ("*/repodata/repomd.xml",)

_ARCHES = ("noarch", "x86_64", "aarch64", "i686", "i386", "ppc64le", "s390x", "armv7hl",
           "riscv64", "src")
_NAME_ARCH = re.compile(r"^\S+\.(?:" + "|".join(_ARCHES) + r")$")


@dataclass(frozen=True)
class DnfCheck:
    packages: tuple[str, ...]  # name.arch, in output order
    kernel_reboot_pending: bool


def parse_dnf_check_update(text: str, returncode: int) -> DnfCheck:
    """Rows of a check-update run; ``returncode`` must be 0 or 100 and agree with the rows."""
    if returncode not in (0, 100):
        raise ParseError("dnf check-update", f"exit code {returncode}")
    names: list[str] = []
    pending_name: str | None = None
    kernel_reboot = False
    unrecognized = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("Security:"):
            kernel_reboot = kernel_reboot or "is an installed security update" in line
            continue
        fields = line.split()
        indented = line[0].isspace()
        if pending_name is not None and indented and len(fields) == 2:
            names.append(pending_name)  # the wrapped second half of a long row
            pending_name = None
            continue
        pending_name = None
        if indented or not _NAME_ARCH.match(fields[0]):
            unrecognized += 0 if indented else 1
            continue  # obsoleted packages, headers, metadata notes
        if len(fields) == 1:
            pending_name = fields[0]
        elif len(fields) >= 3:
            names.append(fields[0])
    unique = tuple(dict.fromkeys(names))
    if returncode == 100 and not unique:
        raise ParseError("dnf check-update", "exit 100 but no package rows")
    if returncode == 0 and (unique or unrecognized):
        # "nothing to update" prints nothing (or only Security: notes) under -q
        raise ParseError("dnf check-update", "exit 0 but output is not empty")
    return DnfCheck(unique, kernel_reboot)
