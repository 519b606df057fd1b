"""disk_encryption on Linux: mountinfo, the sysfs walk and the ``lsblk -J`` cross-check."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from agent.core.errors import ParseError, ProbeError
from agent.core.messages import msg
from agent.posture.context import ProbeContext
from agent.posture.model import Evidence, Finding, Status

CHECK_ID = "disk_encryption"
MOUNTINFO = "/proc/self/mountinfo"
SOURCES: tuple[str, ...] = (MOUNTINFO,)
_MAX_DEPTH = 16  # device stacks are a few layers deep; deeper means a loop in the data


class Enc(StrEnum):
    ENCRYPTED = "encrypted"
    PLAIN = "plain"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class MountEntry:
    mount_point: str
    major: int
    minor: int
    fstype: str
    source: str


_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field_text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field_text)


def parse_mountinfo(text: str) -> list[MountEntry]:
    """proc(5): ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS."""
    entries: list[MountEntry] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)
            major_s, minor_s = fields[2].split(":")
            entries.append(MountEntry(_unescape(fields[4]), int(major_s), int(minor_s),
                                      fields[sep + 1], _unescape(fields[sep + 2])))
        except (ValueError, IndexError) as exc:
            raise ParseError(MOUNTINFO, f"line {lineno} malformed") from exc
    if not entries:
        raise ParseError(MOUNTINFO, "no mounts")
    return entries


def mount_for(entries: Iterable[MountEntry], path: str) -> MountEntry | None:
    """The mount that serves ``path``: longest mount-point prefix; the later of equals is on top."""
    path = os.path.normpath(path)
    best: MountEntry | None = None
    for e in entries:
        mp = e.mount_point
        if (mp in (path, "/") or path.startswith(mp.rstrip("/") + "/")) and (
                best is None or len(mp) >= len(best.mount_point)):
            best = e
    return best


_NOT_ENCRYPTING = ("CRYPT-VERITY-", "CRYPT-INTEGRITY-", "CRYPT-SUBDEV-")
# Filesystems with no block device of their own whose encryption we cannot see from sysfs.
_OPAQUE_FS = {"overlay", "zfs", "tmpfs", "ramfs", "nfs", "nfs4", "cifs", "smb3", "9p",
              "virtiofs", "aufs", "fuse", "squashfs"}


def combine(states: Iterable[Enc]) -> Enc:
    """All encrypted -> encrypted; any plain -> plain (some data is in clear); else unknown."""
    seen = list(states)
    if not seen:
        return Enc.UNKNOWN
    if Enc.PLAIN in seen:
        return Enc.PLAIN
    if Enc.UNKNOWN in seen:
        return Enc.UNKNOWN
    return Enc.ENCRYPTED


@dataclass
class MountVerdict:
    label: str  # "root" | "home"
    path: str
    state: Enc
    mount: MountEntry | None = None
    device: str | None = None
    chain: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    lsblk: str | None = None

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "state": self.state.value}
        if self.mount is not None:
            out.update(mount_point=self.mount.mount_point, fstype=self.mount.fstype,
                       source=self.mount.source, maj_min=f"{self.mount.major}:{self.mount.minor}")
        if self.device:
            out["device"] = self.device
        out["chain"] = self.chain
        if self.reason:
            out["reason"] = self.reason
        if self.lsblk is not None:
            out["lsblk"] = self.lsblk
        return out


class SysfsWalker:
    """Reads /sys under ctx.root; every answer is encrypted, plain or unknown-with-a-reason."""

    def __init__(self, ctx: ProbeContext, mounts: list[MountEntry]) -> None:
        self.ctx = ctx
        self.mounts = mounts

    # small readers -----------------------------------------------------------------------
    def _read(self, absolute: str) -> str | None:
        try:
            return self.ctx.read_text(absolute, limit=4096).strip()
        except ProbeError:
            return None

    def _listdir(self, absolute: str) -> list[str] | None:
        try:
            return sorted(p.name for p in self.ctx.path(absolute).iterdir())
        except OSError:
            return None

    def _exists(self, absolute: str) -> bool:
        return os.path.lexists(self.ctx.path(absolute))

    def name_for_devnum(self, major: int, minor: int) -> str | None:
        uevent = self._read(f"/sys/dev/block/{major}:{minor}/uevent")
        for line in (uevent or "").splitlines():
            key, _, value = line.partition("=")
            if key == "DEVNAME" and value and "/" not in value:
                return value
        return None

    def name_for_source(self, source: str) -> str | None:
        """/dev/mapper/NAME via dm/name; /dev/NAME (or a udev symlink to it) via class/block."""
        if source.startswith("/dev/mapper/"):
            wanted = source.removeprefix("/dev/mapper/")
            for dev in self._listdir("/sys/block") or []:
                if dev.startswith("dm-") and self._read(f"/sys/block/{dev}/dm/name") == wanted:
                    return dev
            return None
        if not source.startswith("/dev/"):
            return None
        name = source.rsplit("/", 1)[-1]
        if not self._exists(f"/sys/class/block/{name}"):
            target = self.ctx.path(source)
            try:  # /dev/disk/by-uuid/... -> ../../dm-0
                name = Path(os.readlink(target)).name
            except OSError:
                return None
        return name if name and self._exists(f"/sys/class/block/{name}") else None

    # the walk ------------------------------------------------------------------------------
    def device_state(self, name: str, chain: list[dict[str, Any]], depth: int = 0) -> Enc:
        node: dict[str, Any] = {"device": f"/dev/{name}"}
        chain.append(node)
        base = f"/sys/class/block/{name}"
        if depth > _MAX_DEPTH or not self._exists(base):
            node.update(kind="?", state="unknown", reason="no sysfs entry")
            return Enc.UNKNOWN
        state, kind = self._classify(name, base, node, chain, depth)
        node.setdefault("kind", kind)
        node["state"] = state.value
        return state

    def _classify(self, name: str, base: str, node: dict[str, Any],
                  chain: list[dict[str, Any]], depth: int) -> tuple[Enc, str]:
        slaves = self._listdir(f"{base}/slaves") or []
        if self._exists(f"{base}/dm"):
            uuid = self._read(f"{base}/dm/uuid")
            node.update(dm_name=self._read(f"{base}/dm/name") or "", dm_uuid=uuid)
            if uuid and uuid.startswith("CRYPT-") and not uuid.startswith(_NOT_ENCRYPTING):
                node["slaves"] = [f"/dev/{s}" for s in slaves]  # the ciphertext lives there
                return Enc.ENCRYPTED, "crypt"
            parts = (uuid or "").split("-")
            # CRYPT-VERITY-... -> dm-verity, LVM-... -> dm-lvm, mpath-... -> dm-mpath
            sub = parts[1] if parts[0] == "CRYPT" and len(parts) > 1 else parts[0]
            kind = "dm-" + (sub.lower() or ("none" if uuid == "" else "unknown"))
            below = combine(self.device_state(s, chain, depth + 1) for s in slaves)
            if uuid is None and below is not Enc.ENCRYPTED:
                node["reason"] = "dm/uuid unreadable"
                return Enc.UNKNOWN, kind
            return (below if slaves else Enc.PLAIN), kind
        if slaves:  # md RAID, bcache, ...: every member must be encrypted
            kind = "md" if self._exists(f"{base}/md") else "stacked"
            return combine(self.device_state(s, chain, depth + 1) for s in slaves), kind
        if self._exists(f"{base}/partition"):
            parent = self.ctx.path(base).resolve().parent.name
            if not parent or not self._exists(f"/sys/class/block/{parent}"):
                node["reason"] = "parent disk not found"
                return Enc.UNKNOWN, "partition"
            return self.device_state(parent, chain, depth + 1), "partition"
        if self._exists(f"{base}/loop"):
            return self._loop_state(base, node, chain, depth), "loop"
        return Enc.PLAIN, "disk"

    def _loop_state(self, base: str, node: dict[str, Any], chain: list[dict[str, Any]],
                    depth: int) -> Enc:
        backing = self._read(f"{base}/loop/backing_file")
        node["backing_file"] = backing
        if not backing or not backing.startswith("/") or backing.endswith("(deleted)"):
            return Enc.PLAIN  # nothing says otherwise
        mount = mount_for(self.mounts, backing)
        if mount is None:
            return Enc.PLAIN
        return self.mount_state(mount, chain, depth + 1)[0]

    def mount_state(self, mount: MountEntry, chain: list[dict[str, Any]],
                    depth: int = 0) -> tuple[Enc, str | None, str]:
        """(state, primary device name or None, reason when unknown)."""
        if mount.fstype == "ecryptfs":
            chain.append({"device": mount.source, "kind": "ecryptfs", "state": "encrypted"})
            return Enc.ENCRYPTED, None, ""
        if mount.major != 0:
            name = self.name_for_devnum(mount.major, mount.minor)
            if name is None:
                return Enc.UNKNOWN, None, f"no sysfs entry for {mount.major}:{mount.minor}"
            return self.device_state(name, chain, depth), name, ""
        fstype = mount.fstype.split(".", 1)[0]
        if fstype in _OPAQUE_FS:
            return Enc.UNKNOWN, None, f"{mount.fstype} file system: encryption not visible"
        name = self.name_for_source(mount.source)
        if name is None:
            return Enc.UNKNOWN, None, f"cannot resolve {mount.source} ({mount.fstype})"
        members = self._btrfs_members(name) if mount.fstype == "btrfs" else [name]
        state = combine(self.device_state(m, chain, depth) for m in members)
        return state, name, ""

    def _btrfs_members(self, name: str) -> list[str]:
        """Every device of the btrfs that contains ``name`` (multi-device btrfs shows one)."""
        for fsid in self._listdir("/sys/fs/btrfs") or []:
            devices = self._listdir(f"/sys/fs/btrfs/{fsid}/devices")
            if devices and name in devices:
                return devices
        return [name]


@dataclass(frozen=True)
class LsblkNode:
    name: str
    kname: str
    maj_min: str
    type: str
    children: tuple[LsblkNode, ...]


def parse_lsblk(text: str) -> list[LsblkNode]:
    def node(raw: Any) -> LsblkNode:
        if not isinstance(raw, dict):
            raise ParseError("lsblk -J", "device is not an object")
        kids = raw.get("children") or []
        if not isinstance(kids, list):
            raise ParseError("lsblk -J", "children is not a list")
        return LsblkNode(str(raw.get("name") or ""), str(raw.get("kname") or raw.get("name") or ""),
                         str(raw.get("maj:min") or ""), str(raw.get("type") or ""),
                         tuple(node(k) for k in kids))

    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ParseError("lsblk -J", str(exc)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("blockdevices"), list):
        raise ParseError("lsblk -J", "no blockdevices list")
    return [node(d) for d in data["blockdevices"]]


def lsblk_state(trees: list[LsblkNode], *, maj_min: str | None = None,
                kname: str | None = None) -> Enc:
    """lsblk nests holders under the devices they sit on: a device on several parents (LVM over two
    PVs) appears once per parent, and each appearance must have a crypt layer at or above it."""
    verdicts: list[Enc] = []

    def visit(n: LsblkNode, crypt_above: bool) -> None:
        crypt = crypt_above or n.type == "crypt"
        if (maj_min and n.maj_min == maj_min) or (kname and n.kname == kname):
            verdicts.append(Enc.ENCRYPTED if crypt else Enc.PLAIN)
        for child in n.children:
            visit(child, crypt)

    for tree in trees:
        visit(tree, False)
    return combine(verdicts)


def _resolve_home(ctx: ProbeContext) -> str:
    """The home directory with symlinks resolved inside ctx.root (Silverblue: /home -> var/home)."""
    home = os.path.normpath(str(ctx.home))
    try:
        rel = ctx.path(home).resolve().relative_to(ctx.root.resolve())
    except (OSError, ValueError, RuntimeError):  # escapes the root, or a symlink loop
        return home
    return "/" + rel.as_posix() if rel.parts else "/"


def _verdict(walker: SysfsWalker, label: str, path: str,
             trees: list[LsblkNode] | None) -> MountVerdict:
    mount = mount_for(walker.mounts, path)
    if mount is None:
        return MountVerdict(label, path, Enc.UNKNOWN, reason=f"no mount serves {path}")
    v = MountVerdict(label, path, Enc.UNKNOWN, mount)
    v.state, name, v.reason = walker.mount_state(mount, v.chain)
    v.device = f"/dev/{name}" if name else (mount.source if mount.source.startswith("/dev/")
                                            else None)
    if trees is None or mount.fstype == "ecryptfs":
        return v
    if any(node.get("kind") == "loop" for node in v.chain):
        v.lsblk = "not comparable (lsblk does not follow loop backing files)"
        return v
    if mount.major != 0:
        cross = lsblk_state(trees, maj_min=f"{mount.major}:{mount.minor}")
    elif name is not None or mount.source.startswith("/dev/"):
        cross = lsblk_state(trees, kname=name or mount.source.rsplit("/", 1)[-1])
    else:
        cross = Enc.UNKNOWN
    v.lsblk = cross.value
    if v.state is Enc.UNKNOWN and cross is not Enc.UNKNOWN:
        v.state, v.reason = cross, f"sysfs could not answer ({v.reason}); lsblk used"
    elif Enc.UNKNOWN not in (v.state, cross) and cross is not v.state:
        v.reason = f"sysfs says {v.state.value}, lsblk says {cross.value}"
        v.state = Enc.UNKNOWN
    return v


def _run_lsblk(ctx: ProbeContext, evidence: Evidence) -> list[LsblkNode] | None:
    try:
        result = ctx.runner.run(["lsblk", "-J", "-o", "NAME,KNAME,MAJ:MIN,TYPE"]).check()
        trees = parse_lsblk(result.text())
    except ProbeError as exc:  # a cross-check only: sysfs still answers
        evidence["lsblk_error"] = exc.detail
        return None
    return trees


def evaluate_linux(root: MountVerdict, home: MountVerdict) -> Finding:
    evidence: Evidence = {"root": root.evidence(), "home": home.evidence()}
    root_dev = root.device or root.path
    home_dev = home.device or home.path
    if root.state is Enc.ENCRYPTED and home.state is Enc.ENCRYPTED:
        return Finding(Status.PASS, msg("disk_encryption.linux.encrypted", device=root_dev),
                       evidence)
    if root.state is Enc.PLAIN and home.state is Enc.ENCRYPTED:
        return Finding(Status.FAIL, msg("disk_encryption.linux.home_only", device=root_dev),
                       evidence, "disk_encryption.linux")
    if root.state is Enc.PLAIN:
        return Finding(Status.FAIL, msg("disk_encryption.linux.plain", device=root_dev),
                       evidence, "disk_encryption.linux")
    if home.state is Enc.PLAIN:
        return Finding(Status.FAIL, msg("disk_encryption.linux.home_plain", device=home_dev),
                       evidence, "disk_encryption.linux")
    unknown = root if root.state is Enc.UNKNOWN else home
    return Finding(Status.UNKNOWN, msg("disk_encryption.linux.unknown", path=unknown.path,
                                       detail=unknown.reason[:200] or "?"),
                   evidence, f"{CHECK_ID}.unknown")


def check_linux(ctx: ProbeContext) -> Finding:
    mounts = parse_mountinfo(ctx.read_text(MOUNTINFO))
    walker = SysfsWalker(ctx, mounts)
    extra: Evidence = {}
    trees = _run_lsblk(ctx, extra)
    finding = evaluate_linux(_verdict(walker, "root", "/", trees),
                             _verdict(walker, "home", _resolve_home(ctx), trees))
    finding.evidence.update(extra)
    finding.evidence["lsblk_cross_check"] = trees is not None
    return finding
