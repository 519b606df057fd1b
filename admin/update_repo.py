"""``byod-admin update-repo``: the TUF repository the agents update from, as static files.

Roles and keys (docs/it-guide.md "Updates"):

- **root**: one or more Ed25519 keys with a threshold, kept **offline** (a USB stick in a safe);
  used only by ``init`` and ``rotate-root``. Expires after a year unless rotated.
- **targets**, **snapshot**, **timestamp**: one key each ("online": on the publishing PC,
  encrypted with a passphrase). ``timestamp`` must be re-signed at least daily (a cron job running
  ``update-repo timestamp``): an agent that sees an expired timestamp refuses (freeze attack).

Every key file is encrypted PKCS#8 (``update-repo keygen``); no private key is ever written in
plaintext. The repository is two directories, ``metadata/`` and ``targets/``, for any static HTTPS
server; consistent snapshots (``N.targets.json``, ``<sha256>.<file>``) so a server can be updated
while agents read it. Channels: ``pilot`` and ``general``; ``add`` publishes a release to one,
``promote`` copies a release from pilot to general. The layout of targets is agent/update/model.py.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from securesystemslib.signer import CryptoSigner, Signer, SSlibKey
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from admin import release
from admin.keys import MIN_PASSPHRASE, load_private_key
from agent.core import exitcodes, i18n
from agent.core.fsutil import atomic_write
from agent.core.messages import Message, msg
from agent.policy import signing
from agent.policy.errors import PolicyRefused
from agent.update import model

EXPIRY = {"root": timedelta(days=365), "targets": timedelta(days=90),
          "snapshot": timedelta(days=30), "timestamp": timedelta(days=1)}
ONLINE = ("targets", "snapshot", "timestamp")
SERIALIZER = JSONSerializer(compact=False)


class RepoRefused(PolicyRefused):
    """The repository cannot be changed as asked; the message says why."""


def _refuse(key: str, detail: str, **params: str | int) -> RepoRefused:
    return RepoRefused(msg(f"update_repo.refused.{key}", **params), detail)


def sslib_key(pub: Ed25519PublicKey) -> SSlibKey:
    return SSlibKey.from_crypto(pub, scheme="ed25519")


def signer_for(private: Ed25519PrivateKey) -> CryptoSigner:
    return CryptoSigner(private, sslib_key(private.public_key()))


@dataclass
class Repo:
    path: Path

    @property
    def metadata(self) -> Path:
        return self.path / "metadata"

    @property
    def targets_dir(self) -> Path:
        return self.path / "targets"

    def read(self, name: str) -> Metadata:  # type: ignore[type-arg]
        return Metadata.from_bytes((self.metadata / name).read_bytes())

    def root(self) -> Metadata[Root]:
        return self.read("root.json")

    def timestamp(self) -> Metadata[Timestamp]:
        return self.read("timestamp.json")

    def snapshot(self) -> Metadata[Snapshot]:
        version = self.timestamp().signed.snapshot_meta.version
        return self.read(f"{version}.snapshot.json")

    def targets(self) -> Metadata[Targets]:
        version = self.snapshot().signed.meta["targets.json"].version
        return self.read(f"{version}.targets.json")

    def write(self, name: str, md: Metadata) -> bytes:  # type: ignore[type-arg]
        data = md.to_bytes(SERIALIZER)
        atomic_write(self.metadata / name, data, mode=0o644)
        return data


def _expiry(role: str, now: datetime, days: int | None = None) -> datetime:
    delta = timedelta(days=days) if days else EXPIRY[role]
    return (now + delta).replace(microsecond=0)


def _check_signers(root: Root, role: str, signers: Sequence[Signer]) -> None:
    allowed = set(root.roles[role].keyids)
    for s in signers:
        if s.public_key.keyid not in allowed:
            raise _refuse("wrong_key", f"{s.public_key.keyid[:16]} is not a {role} key", role=role)
    if len({s.public_key.keyid for s in signers}) < root.roles[role].threshold:
        raise _refuse("threshold", f"{role} needs {root.roles[role].threshold} keys", role=role,
                      threshold=root.roles[role].threshold)


def _publish_snapshot(repo: Repo, targets_bytes: bytes | None, targets_version: int | None, *,
                      snapshot_signer: Signer, timestamp_signer: Signer, now: datetime) -> None:
    """New snapshot (naming the given targets version, or the current one) and timestamp."""
    old_ts = repo.timestamp() if (repo.metadata / "timestamp.json").exists() else None
    snap_version = 1
    if old_ts is not None:
        snap_version = old_ts.signed.snapshot_meta.version + 1
    if targets_bytes is None or targets_version is None:
        current = repo.snapshot().signed.meta["targets.json"]
        meta = MetaFile(current.version, current.length, current.hashes)
    else:
        meta = MetaFile.from_data(targets_version, targets_bytes, ["sha256"])
    snap = Metadata(Snapshot(snap_version, expires=_expiry("snapshot", now),
                             meta={"targets.json": meta}))
    snap.sign(snapshot_signer)
    snap_bytes = repo.write(f"{snap_version}.snapshot.json", snap)
    _write_timestamp(repo, snap_version, snap_bytes, timestamp_signer, now=now,
                     old_version=0 if old_ts is None else old_ts.signed.version)


def _write_timestamp(repo: Repo, snap_version: int, snap_bytes: bytes, signer: Signer, *,
                     now: datetime, old_version: int, days: int | None = None) -> None:
    ts = Metadata(Timestamp(old_version + 1, expires=_expiry("timestamp", now, days),
                            snapshot_meta=MetaFile.from_data(snap_version, snap_bytes,
                                                             ["sha256"])))
    ts.sign(signer)
    repo.write("timestamp.json", ts)


def init(path: Path, root_signers: Sequence[Signer], threshold: int,
         online: dict[str, Signer], *, now: datetime) -> Repo:
    repo = Repo(path)
    if (repo.metadata / "root.json").exists():
        raise _refuse("exists", str(repo.metadata / "root.json"), path=str(path))
    if not 1 <= threshold <= len(root_signers):
        raise _refuse("threshold", f"threshold {threshold} with {len(root_signers)} keys",
                      role="root", threshold=threshold)
    online_ids = {s.public_key.keyid for s in online.values()}
    if online_ids & {s.public_key.keyid for s in root_signers}:
        raise _refuse("root_online", "a root key cannot also be an online key")
    root = Root(1, expires=_expiry("root", now), consistent_snapshot=True)
    for s in root_signers:
        root.add_key(s.public_key, "root")
    root.roles["root"].threshold = threshold
    for role in ONLINE:
        root.add_key(online[role].public_key, role)
    md = Metadata(root)
    for s in root_signers:
        md.sign(s, append=True)
    repo.metadata.mkdir(parents=True, exist_ok=True)
    repo.targets_dir.mkdir(parents=True, exist_ok=True)
    repo.write("1.root.json", md)
    repo.write("root.json", md)
    targets = Metadata(Targets(1, expires=_expiry("targets", now)))
    targets.sign(online["targets"])
    tbytes = repo.write("1.targets.json", targets)
    _publish_snapshot(repo, tbytes, 1, snapshot_signer=online["snapshot"],
                      timestamp_signer=online["timestamp"], now=now)
    return repo


def _copy_target(repo: Repo, target_path: str, source: Path | bytes) -> TargetFile:
    data = source if isinstance(source, bytes) else None
    info = (TargetFile.from_data(target_path, data, ["sha256"]) if data is not None else
            TargetFile.from_file(target_path, str(source), ["sha256"]))
    dirname, _, base = target_path.rpartition("/")
    dest = repo.targets_dir / dirname / f"{info.hashes['sha256']}.{base}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    if data is not None:
        atomic_write(dest, data, mode=0o644)
    elif isinstance(source, Path):
        shutil.copyfile(source, dest)
        dest.chmod(0o644)
    return info


def _sign_targets(repo: Repo, targets: Metadata[Targets], signers: dict[str, Signer],
                  now: datetime) -> None:
    root = repo.root().signed
    _check_signers(root, "targets", [signers["targets"]])
    targets.signed.version += 1
    targets.signed.expires = _expiry("targets", now)
    targets.sign(signers["targets"])
    tbytes = repo.write(f"{targets.signed.version}.targets.json", targets)
    _publish_snapshot(repo, tbytes, targets.signed.version, snapshot_signer=signers["snapshot"],
                      timestamp_signer=signers["timestamp"], now=now)


def offered(repo: Repo, channel: str, os_name: str) -> str | None:
    """The version a channel's index names now, read back from the repository."""
    info = repo.targets().signed.targets.get(model.index_path(channel, os_name))
    if info is None:
        return None
    dirname = model.index_path(channel, os_name).rpartition("/")[0]
    data = (repo.targets_dir / dirname / f"{info.hashes['sha256']}.latest.json").read_bytes()
    return model.parse_index(data, os_name).version


def add(repo: Repo, signers: dict[str, Signer], *, dist: Path, artifact: str, version: str,
        channel: str, os_name: str, release_pub: Ed25519PublicKey, now: datetime) -> None:
    """Publish DIST/ARTIFACT with the release's SHA256SUMS(.sig) as ``version`` on a channel."""
    try:
        model.index_path(channel, os_name)
        model.version_key(version)
        model.parse_index(model.index_bytes(version, artifact), os_name)
    except ValueError as exc:
        raise _refuse("bad_release", str(exc), reason=str(exc)) from exc
    checked = release.verify_dist(dist, release_pub)  # agents will check it: check it first
    if not checked.ok:
        detail = ", ".join(f"{k.value} {n}" for k, n in checked.problems)
        raise _refuse("release_unsigned", detail, reason=detail)
    current = offered(repo, channel, os_name)
    if current is not None and model.version_key(version) <= model.version_key(current):
        raise _refuse("not_newer", f"{version} <= {current}", version=version, current=current)
    md = repo.targets()
    rel = model.release_dir(channel, os_name, version)
    for name in (artifact, release.SUMS, release.SUMS_SIG):
        info = _copy_target(repo, f"{rel}/{name}", dist / name)
        md.signed.targets[info.path] = info
    index = _copy_target(repo, model.index_path(channel, os_name),
                         model.index_bytes(version, artifact))
    md.signed.targets[index.path] = index
    _sign_targets(repo, md, signers, now)


def promote(repo: Repo, signers: dict[str, Signer], *, version: str, os_name: str,
            source: str, dest: str, now: datetime) -> None:
    """Offer on ``dest`` exactly the files ``source`` got (same bytes, same hashes)."""
    md = repo.targets()
    src_rel = model.release_dir(source, os_name, version)
    dst_rel = model.release_dir(dest, os_name, version)
    files = {p: t for p, t in md.signed.targets.items() if p.startswith(src_rel + "/")}
    if not files:
        raise _refuse("no_such_release", src_rel, release=src_rel)
    current = offered(repo, dest, os_name)
    if current is not None and model.version_key(version) <= model.version_key(current):
        raise _refuse("not_newer", f"{version} <= {current}", version=version, current=current)
    artifact = ""
    for path, info in files.items():
        name = path.rpartition("/")[2]
        dirname = path.rpartition("/")[0]
        blob = (repo.targets_dir / dirname / f"{info.hashes['sha256']}.{name}").read_bytes()
        copied = _copy_target(repo, f"{dst_rel}/{name}", blob)
        md.signed.targets[copied.path] = copied
        if name not in (release.SUMS, release.SUMS_SIG):
            artifact = name
    index = _copy_target(repo, model.index_path(dest, os_name),
                         model.index_bytes(version, artifact))
    md.signed.targets[index.path] = index
    _sign_targets(repo, md, signers, now)


def publish(repo: Repo, signers: dict[str, Signer], *, now: datetime) -> None:
    """Re-sign targets, snapshot and timestamp with fresh expiry (nothing else changes)."""
    _sign_targets(repo, repo.targets(), signers, now)


def timestamp(repo: Repo, signer: Signer, *, now: datetime, days: int | None = None) -> None:
    """Only a new timestamp (daily, from cron): agents keep seeing a fresh repository."""
    _check_signers(repo.root().signed, "timestamp", [signer])
    old = repo.timestamp()
    snap_version = old.signed.snapshot_meta.version
    snap_bytes = (repo.metadata / f"{snap_version}.snapshot.json").read_bytes()
    _write_timestamp(repo, snap_version, snap_bytes, signer, now=now,
                     old_version=old.signed.version, days=days)


def rotate_root(repo: Repo, old_signers: Sequence[Signer], new_root: Sequence[Signer],
                threshold: int, *, now: datetime,
                online: dict[str, SSlibKey] | None = None) -> int:
    """Root N+1 with the new root keys (and any new online keys), signed by a threshold of the
    old root keys and of the new ones, so every agent can walk from the root it trusts."""
    md = repo.root()
    _check_signers(md.signed, "root", old_signers)
    if not 1 <= threshold <= len(new_root):
        raise _refuse("threshold", f"threshold {threshold} with {len(new_root)} keys",
                      role="root", threshold=threshold)
    root = md.signed
    for keyid in list(root.roles["root"].keyids):
        root.revoke_key(keyid, "root")
    for s in new_root:
        root.add_key(s.public_key, "root")
    root.roles["root"].threshold = threshold
    for role, key in (online or {}).items():
        for keyid in list(root.roles[role].keyids):
            root.revoke_key(keyid, role)
        root.add_key(key, role)
    root.version += 1
    root.expires = _expiry("root", now)
    md.signatures.clear()
    seen = set()
    for s in [*old_signers, *new_root]:
        if s.public_key.keyid not in seen:
            md.sign(s, append=True)
            seen.add(s.public_key.keyid)
    repo.write(f"{root.version}.root.json", md)
    repo.write("root.json", md)
    return root.version


# -- command line -------------------------------------------------------------------------------
def _say(message: Message, *, err: bool = False) -> None:
    print(i18n.render(message, i18n.detect_language()), file=sys.stderr if err else sys.stdout)


def _passphrase(file: str | None, *, confirm: bool = False) -> bytes:
    if file:
        lines = Path(file).read_text(encoding="utf-8").splitlines()
        value = lines[0] if lines else ""
    else:
        if not sys.stdin.isatty():
            raise PolicyRefused(msg("admin.passphrase_needed"), "no terminal for the passphrase")
        value = getpass.getpass(i18n.render(msg("admin.passphrase_prompt"),
                                            i18n.detect_language()))
    if confirm and len(value) < MIN_PASSPHRASE:
        raise PolicyRefused(msg("admin.passphrase_short", minimum=MIN_PASSPHRASE),
                            "passphrase too short")
    return value.encode("utf-8")


def _signer(path: str, passphrase: bytes) -> CryptoSigner:
    return signer_for(load_private_key(Path(path), passphrase))


def _online(args: argparse.Namespace) -> dict[str, Signer]:
    secret = _passphrase(args.passphrase_file)
    return {role: _signer(getattr(args, f"{role}_key"), secret) for role in ONLINE}


def _now() -> datetime:
    return datetime.now(UTC)


def cmd_keygen(args: argparse.Namespace) -> int:
    out = Path(args.out)
    pub = out.with_name(out.name + ".pub")
    if out.exists() or pub.exists():
        _say(msg("admin.exists", path=str(out if out.exists() else pub)), err=True)
        return exitcodes.USAGE
    secret = _passphrase(args.passphrase_file, confirm=True)
    key = Ed25519PrivateKey.generate()
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.BestAvailableEncryption(secret)), 0o600)
    atomic_write(pub, signing.public_key_pem(key.public_key()), 0o644)
    _say(msg("update_repo.keygen_done", path=str(out), keyid=sslib_key(key.public_key()).keyid))
    return exitcodes.OK


def cmd_init(args: argparse.Namespace) -> int:
    root_secret = _passphrase(args.root_passphrase_file)
    roots = [_signer(p, root_secret) for p in args.root_key]
    repo = init(Path(args.repo), roots, args.threshold, _online(args), now=_now())
    _say(msg("update_repo.init_done", root=str(repo.metadata / "1.root.json")))
    return exitcodes.OK


def cmd_add(args: argparse.Namespace) -> int:
    pub = signing.load_public_key(Path(args.release_pub).read_bytes())
    add(Repo(Path(args.repo)), _online(args), dist=Path(args.dist), artifact=args.artifact,
        version=args.version, channel=args.channel, os_name=args.os, release_pub=pub, now=_now())
    _say(msg("update_repo.added", version=args.version, channel=args.channel, os=args.os))
    return exitcodes.OK


def cmd_promote(args: argparse.Namespace) -> int:
    promote(Repo(Path(args.repo)), _online(args), version=args.version, os_name=args.os,
            source="pilot", dest="general", now=_now())
    _say(msg("update_repo.promoted", version=args.version, os=args.os))
    return exitcodes.OK


def cmd_publish(args: argparse.Namespace) -> int:
    publish(Repo(Path(args.repo)), _online(args), now=_now())
    _say(msg("update_repo.published", repo=args.repo))
    return exitcodes.OK


def cmd_timestamp(args: argparse.Namespace) -> int:
    signer = _signer(args.timestamp_key, _passphrase(args.passphrase_file))
    timestamp(Repo(Path(args.repo)), signer, now=_now(), days=args.days)
    _say(msg("update_repo.published", repo=args.repo))
    return exitcodes.OK


def cmd_rotate_root(args: argparse.Namespace) -> int:
    secret = _passphrase(args.root_passphrase_file)
    old = [_signer(p, secret) for p in args.old_root_key]
    new = [_signer(p, secret) for p in args.new_root_key]
    online = {role: sslib_key(signing.load_public_key(Path(p).read_bytes()))
              for role in ONLINE if (p := getattr(args, f"new_{role}_pub"))}
    version = rotate_root(Repo(Path(args.repo)), old, new, args.threshold, now=_now(),
                          online=online)
    _say(msg("update_repo.rotated", version=version))
    return exitcodes.OK


def cmd_status(args: argparse.Namespace) -> int:
    repo = Repo(Path(args.repo))
    for role, md in (("root", repo.root()), ("targets", repo.targets()),
                     ("snapshot", repo.snapshot()), ("timestamp", repo.timestamp())):
        _say(msg("update_repo.status_role", role=role, version=md.signed.version,
                 expires=md.signed.expires.isoformat()))
    for channel in model.CHANNELS:
        for os_name in model.OSES:
            version = offered(repo, channel, os_name)
            if version is not None:
                _say(msg("update_repo.status_offer", channel=channel, os=os_name,
                         version=version))
    return exitcodes.OK


def _online_args(p: argparse.ArgumentParser) -> None:
    for role in ONLINE:
        p.add_argument(f"--{role}-key", required=True, help=f"{role} key (encrypted PKCS#8)")
    p.add_argument("--passphrase-file", help="passphrase of the online keys (first line)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    top = sub.add_parser("update-repo", help="create and maintain the TUF update repository")
    u = top.add_subparsers(dest="update_repo_command")
    k = u.add_parser("keygen", help="make one Ed25519 key (FILE, FILE.pub), encrypted")
    k.add_argument("--out", required=True)
    k.add_argument("--passphrase-file")
    k.set_defaults(handler=cmd_keygen)
    i = u.add_parser("init", help="new repository: root (offline keys), targets, snapshot, "
                     "timestamp; ship metadata/1.root.json in the installer")
    i.add_argument("--repo", required=True)
    i.add_argument("--root-key", required=True, action="append", help="offline root key(s)")
    i.add_argument("--threshold", type=int, default=1)
    i.add_argument("--root-passphrase-file")
    _online_args(i)
    i.set_defaults(handler=cmd_init)
    a = u.add_parser("add", help="publish a signed release (byod-admin release sign) on a channel")
    a.add_argument("--repo", required=True)
    a.add_argument("--dist", required=True, help="release directory with SHA256SUMS(.sig)")
    a.add_argument("--artifact", required=True, help="file name inside DIST for this OS")
    a.add_argument("--version", required=True)
    a.add_argument("--os", required=True, choices=model.OSES)
    a.add_argument("--channel", default="pilot", choices=model.CHANNELS)
    a.add_argument("--release-pub", required=True, help="the release key's .pub (checked)")
    _online_args(a)
    a.set_defaults(handler=cmd_add)
    p = u.add_parser("promote", help="offer a pilot release on the general channel")
    p.add_argument("--repo", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--os", required=True, choices=model.OSES)
    _online_args(p)
    p.set_defaults(handler=cmd_promote)
    pub = u.add_parser("publish", help="re-sign targets, snapshot, timestamp (fresh expiry)")
    pub.add_argument("--repo", required=True)
    _online_args(pub)
    pub.set_defaults(handler=cmd_publish)
    t = u.add_parser("timestamp", help="re-sign the timestamp only (run daily)")
    t.add_argument("--repo", required=True)
    t.add_argument("--timestamp-key", required=True)
    t.add_argument("--passphrase-file")
    t.add_argument("--days", type=int, help="validity (default 1)")
    t.set_defaults(handler=cmd_timestamp)
    r = u.add_parser("rotate-root", help="new root keys (and optionally new online keys)")
    r.add_argument("--repo", required=True)
    r.add_argument("--old-root-key", required=True, action="append")
    r.add_argument("--new-root-key", required=True, action="append")
    r.add_argument("--threshold", type=int, default=1)
    r.add_argument("--root-passphrase-file")
    for role in ONLINE:
        r.add_argument(f"--new-{role}-pub", help=f"replace the {role} key with this .pub")
    r.set_defaults(handler=cmd_rotate_root)
    s = u.add_parser("status", help="versions and expiry of each role, what each channel offers")
    s.add_argument("--repo", required=True)
    s.set_defaults(handler=cmd_status)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
