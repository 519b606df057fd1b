"""The per-user install step, without administrator rights.

Linux (decided, docs/it-guide.md "Updates"): a **per-user archive**. The self-updater unpacks the
signed ``.tar.gz`` into ``<data dir>/versions/<version>/`` and switches the ``current`` symbolic
link to it with one ``rename`` (atomic: a starting agent sees the old version or the new one,
never half of one). The autostart entry and the menu entry run ``<data dir>/current/byod-agent``.
An agent installed by the system package manager (the .deb, files under /usr owned by dpkg) never
rewrites itself: dpkg's database would no longer match the files and the next ``apt upgrade``
would fight the updater; apt, run by whoever administers that PC, updates it, and the agent says
so (``package_managed``).

Windows: the MSI is per-user (``MSIINSTALLPERUSER=1``, ALLUSERS=2): ``msiexec /i ... /qn`` runs
without elevation; the command is built here (``msiexec_argv``), run by the caller after the
Authenticode check. macOS: a .pkg needs an administrator; not offered yet (``unsupported``).

A failure at any step removes what was unpacked and leaves ``current`` where it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from agent.core.paths import data_dir

MAX_MEMBERS = 20_000
MAX_TOTAL_BYTES = 2 * 1024 ** 3  # a PyInstaller onedir is ~120 MB unpacked
MARKER = "byod-agent-version"  # a text file at the archive's top: the version it carries
CURRENT = "current"


class InstallError(Exception):
    pass


def versions_root(base: Path | None = None) -> Path:
    return (base or data_dir()) / "versions"


def current_link(base: Path | None = None) -> Path:
    return (base or data_dir()) / CURRENT


def _safe_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = []
    total = 0
    for n, m in enumerate(tar):
        if n >= MAX_MEMBERS:
            raise InstallError("archive has too many members")
        pure = PurePosixPath(m.name)
        if pure.is_absolute() or ".." in pure.parts or "\\" in m.name or not m.name.strip("./"):
            raise InstallError(f"unsafe member name {m.name[:80]!r}")
        if not (m.isfile() or m.isdir()):  # no links, devices, FIFOs
            raise InstallError(f"{m.name[:80]}: only files and directories may be in an update")
        total += m.size
        if total > MAX_TOTAL_BYTES:
            raise InstallError("archive unpacks to more than the limit")
        members.append(m)
    return members


def unpack(archive: Path, dest: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        members = _safe_members(tar)
        tar.extractall(dest, members=members, filter="data")


def read_marker(directory: Path) -> str:
    try:
        with (directory / MARKER).open("rb") as fh:
            return fh.read(64).decode("ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InstallError(f"no {MARKER} in the archive") from exc


def switch_current(base: Path, version: str) -> None:
    """Point ``current`` at versions/<version> with one rename (atomic on POSIX)."""
    link = current_link(base)
    tmp = link.with_name(f".{CURRENT}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(Path("versions") / version, tmp)
    os.replace(tmp, link)


def current_version(base: Path | None = None) -> str | None:
    link = current_link(base)
    try:
        return os.readlink(link).replace("\\", "/").rsplit("/", 1)[-1] if link.is_symlink() \
            else None
    except OSError:
        return None


def install_archive(archive: Path, version: str, base: Path | None = None) -> Path:
    """Unpack into versions/<version>, check its marker, switch ``current``; the new directory."""
    root = versions_root(base)
    root.mkdir(parents=True, exist_ok=True)
    final = root / version
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=root))
    try:
        unpack(archive, staging)
        found = read_marker(staging)
        if found != version:
            raise InstallError(f"archive says {found[:20]!r}, the signed index {version!r}")
        for p in staging.rglob("*"):  # nothing group/world-writable in what will run
            mode = p.lstat().st_mode
            if mode & (stat.S_IWGRP | stat.S_IWOTH):
                os.chmod(p, mode & ~(stat.S_IWGRP | stat.S_IWOTH))
        if final.exists():  # a half-finished earlier attempt of the same version
            shutil.rmtree(final)
        os.replace(staging, final)
        switch_current(root.parent, version)
    except (OSError, tarfile.TarError, EOFError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise InstallError(f"{type(exc).__name__}: {exc}"[:300]) from exc
    except InstallError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def package_managed(executable: Path) -> bool:
    """True for an agent the system package manager installed (Linux: under /usr or /opt and
    listed by dpkg). Such an agent is updated by apt, never by itself."""
    try:
        resolved = executable.resolve()
    except OSError:
        return False
    if not str(resolved).startswith(("/usr/", "/opt/")):
        return False
    info = Path("/var/lib/dpkg/info")
    return any(info.glob("byod-agent*.list")) if info.is_dir() else True


def msiexec_argv(msi: Path, log: Path) -> list[str]:
    """Per-user, silent, no reboot; the MSI's own public properties keep their installed values."""
    for p in (msi, log):
        if any(ch in str(p) for ch in '"\r\n\t'):
            raise InstallError("unusable path for msiexec")
    return ["msiexec.exe", "/i", str(msi), "/qn", "/norestart", "MSIINSTALLPERUSER=1",
            "ALLUSERS=2", "/l*v", str(log)]
