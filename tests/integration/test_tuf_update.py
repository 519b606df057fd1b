"""Self-update end to end: a real TUF repository made by byod-admin update-repo, served over HTTPS
on loopback (Python http.server with ssl, a test CA), fetched by the agent's ngclient updater.

Each attack of the issue is played against the real client: a rolled-back version or rolled-back
metadata, an expired timestamp (freeze), tampered bytes, metadata or a release list signed by the
wrong key; plus root rotation, a remote session in progress and a failed install. Whenever the
update is refused the running version stays (``current`` does not move) and the outcome's message
exists in Japanese and English.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import os
import shutil
import ssl
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, Root

from admin import release, update_repo
from admin.update_repo import Repo, signer_for
from agent.core import i18n
from agent.policy import signing
from agent.session import active
from agent.update import install
from agent.update.client import UpdateConfig, run_check
from agent.update.model import Outcome
from agent.update.state import load, status_path
from testkit import pki

NOW = datetime.now(UTC).replace(microsecond=0)


def archive(version: str, *, marker: str | None = None, link: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("byod-agent-version", (marker or version).encode()),
                           ("byod-agent", b"#!/bin/sh\necho byod-agent " + version.encode())):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo("evil")
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return buf.getvalue()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        type(self).requests.append(self.path)


@contextlib.contextmanager
def https_server(root: Path, ca: pki.Pair) -> Iterator[tuple[int, list[str]]]:
    server_pair = pki.server_pair(ca, "localhost")
    cert = root.parent / "server.pem"
    cert.write_bytes(server_pair.cert_pem + server_pair.key_pem())
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert)
    handler = type("H", (_Quiet,), {"requests": []})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], handler.requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@dataclass
class World:
    tmp: Path
    ca: pki.Pair
    port: int
    requests: list[str]
    release_key: Ed25519PrivateKey
    root_signers: list[CryptoSigner]
    online: dict[str, CryptoSigner]
    repo: Repo
    shipped_root: bytes
    session_lock: Path
    dists: dict[str, Path] = field(default_factory=dict)

    def dist(self, version: str, *, key: Ed25519PrivateKey | None = None,
             data: bytes | None = None) -> Path:
        d = self.tmp / f"dist-{version}-{len(self.dists)}"
        d.mkdir()
        (d / f"byod-agent-{version}-linux.tar.gz").write_bytes(data or archive(version))
        sums, sig = release.sign_dist(d, key or self.release_key)
        (d / release.SUMS).write_bytes(sums)
        (d / release.SUMS_SIG).write_bytes(sig)
        self.dists[version] = d
        return d

    def publish(self, version: str, channel: str = "general", *,
                key: Ed25519PrivateKey | None = None, data: bytes | None = None) -> None:
        d = self.dist(version, key=key, data=data)
        update_repo.add(self.repo, dict(self.online), dist=d,
                        artifact=f"byod-agent-{version}-linux.tar.gz", version=version,
                        channel=channel, os_name="linux",
                        release_pub=(key or self.release_key).public_key(), now=NOW)

    def config(self, running: str = "1.0.0", channel: str = "general",
               root: bytes | None = None) -> UpdateConfig:
        keys = self.tmp / "release-keys"
        keys.mkdir(exist_ok=True)
        (keys / "release.pub").write_bytes(signing.public_key_pem(self.release_key.public_key()))
        ctx = ssl.create_default_context(cafile=None)
        ctx.load_verify_locations(cadata=self.ca.cert_pem.decode())
        return UpdateConfig(url=f"https://localhost:{self.port}/", channel=channel,
                            os_name="linux", context=ctx, root=root or self.shipped_root,
                            state_base=self.tmp / "state", install_base=self.tmp / "data",
                            release_keys=keys, running_version=running, deadline_s=20,
                            session_busy=lambda: active.session_active(self.session_lock))

    def current(self) -> str | None:
        return install.current_version(self.tmp / "data")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    served = tmp_path / "www"
    roots = [signer_for(Ed25519PrivateKey.generate())]
    online = {r: signer_for(Ed25519PrivateKey.generate()) for r in update_repo.ONLINE}
    repo = update_repo.init(served, roots, 1, dict(online), now=NOW)
    ca = pki.make_ca("Update Test CA")
    with https_server(served, ca) as (port, requests):
        yield World(tmp_path, ca, port, requests, Ed25519PrivateKey.generate(), roots, online,
                    repo, (served / "metadata" / "1.root.json").read_bytes(),
                    tmp_path / "state" / "session.lock")


def said(outcome: Outcome, result_message: object) -> None:
    for lang in i18n.LANGS:
        text = i18n.render(result_message, lang)  # type: ignore[arg-type]
        assert text and not text.startswith("update.outcome."), (outcome, lang, text)


def test_an_update_installs_and_switches_current(world: World) -> None:
    world.publish("1.1.0")
    result = run_check(world.config("1.0.0"))
    assert result.outcome is Outcome.INSTALLED, result.detail
    said(result.outcome, result.message)
    assert world.current() == "1.1.0"
    installed = world.tmp / "data" / "current"
    assert (installed / "byod-agent-version").read_text() == "1.1.0"
    assert os.readlink(installed) == "versions/1.1.0"
    status = load(status_path(world.tmp / "state"))
    assert status.outcome == "installed" and status.highest_installed == "1.1.0"
    assert status.last_check_time() is not None and status.channel == "general"
    # the agent now runs 1.1.0: nothing newer, nothing to do
    again = run_check(world.config("1.1.0"))
    assert again.outcome is Outcome.UP_TO_DATE, again.detail


def test_pilot_and_general_channels(world: World) -> None:
    world.publish("1.1.0", channel="pilot")
    assert run_check(world.config("1.0.0")).outcome is Outcome.NO_RELEASE
    update_repo.promote(world.repo, dict(world.online), version="1.1.0", os_name="linux",
                        source="pilot", dest="general", now=NOW)
    assert run_check(world.config("1.0.0")).outcome is Outcome.INSTALLED


def test_an_older_version_is_refused(world: World) -> None:
    world.publish("1.1.0")
    result = run_check(world.config("1.2.0"))
    assert result.outcome is Outcome.ROLLBACK
    said(result.outcome, result.message)
    assert world.current() is None


def test_below_the_highest_version_ever_installed_is_refused(world: World) -> None:
    world.publish("1.1.0")
    path = status_path(world.tmp / "state")
    path.parent.mkdir(parents=True)
    path.write_text('{"highest_installed": "1.3.0"}')
    result = run_check(world.config("1.0.0"))  # e.g. the user put an old build back
    assert result.outcome is Outcome.ROLLBACK
    assert world.current() is None


def test_rolled_back_metadata_is_refused(world: World) -> None:
    world.publish("1.1.0")
    old = world.tmp / "old-metadata"
    shutil.copytree(world.repo.metadata, old)
    world.publish("1.2.0")
    assert run_check(world.config("1.2.0")).outcome is Outcome.UP_TO_DATE  # saw timestamp v3
    shutil.rmtree(world.repo.metadata)
    shutil.copytree(old, world.repo.metadata)  # a mirror replays yesterday's repository
    result = run_check(world.config("1.0.0"))
    assert result.outcome is Outcome.ROLLBACK, result.detail
    said(result.outcome, result.message)
    assert world.current() is None


def test_expired_timestamp_freeze_is_refused(world: World) -> None:
    world.publish("1.1.0")
    update_repo.timestamp(world.repo, world.online["timestamp"], now=NOW - timedelta(days=3),
                          days=1)
    result = run_check(world.config("1.0.0"))
    assert result.outcome is Outcome.EXPIRED, result.detail
    said(result.outcome, result.message)
    assert world.current() is None


def test_tampered_target_is_refused(world: World) -> None:
    world.publish("1.1.0")
    [blob] = (world.repo.targets_dir / "general" / "linux" / "1.1.0").glob("*.tar.gz")
    blob.write_bytes(archive("1.1.0", marker="1.1.0 "))  # same name, other bytes
    result = run_check(world.config("1.0.0"))
    assert result.outcome is Outcome.TAMPERED, result.detail
    said(result.outcome, result.message)
    assert world.current() is None


def test_metadata_signed_by_a_foreign_key_is_refused(world: World) -> None:
    world.publish("1.1.0")
    foreign = dict(world.online, targets=signer_for(Ed25519PrivateKey.generate()))
    md = world.repo.targets()
    md.signed.version += 1
    md.sign(foreign["targets"])
    data = world.repo.write(f"{md.signed.version}.targets.json", md)
    update_repo._publish_snapshot(world.repo, data, md.signed.version,
                                  snapshot_signer=world.online["snapshot"],
                                  timestamp_signer=world.online["timestamp"], now=NOW)
    result = run_check(world.config("1.0.0"))
    assert result.outcome is Outcome.BAD_SIGNATURE, result.detail
    said(result.outcome, result.message)
    assert world.current() is None


def test_release_signed_by_another_key_is_refused_after_tuf(world: World) -> None:
    """TUF is satisfied (the targets key signed it); the release key is not the shipped one."""
    world.publish("1.1.0", key=Ed25519PrivateKey.generate())
    result = run_check(world.config("1.0.0"))
    assert result.outcome is Outcome.BAD_SIGNATURE, result.detail
    assert "release signature" in result.detail
    assert world.current() is None


def test_root_rotation(world: World) -> None:
    world.publish("1.1.0")
    assert run_check(world.config("1.1.0")).outcome is Outcome.UP_TO_DATE  # trusts root v1
    new_root = signer_for(Ed25519PrivateKey.generate())
    new_online = {r: signer_for(Ed25519PrivateKey.generate()) for r in update_repo.ONLINE}
    version = update_repo.rotate_root(world.repo, world.root_signers, [new_root], 1, now=NOW,
                                      online={r: s.public_key for r, s in new_online.items()})
    assert version == 2
    world.online = new_online
    world.publish("1.2.0")  # signed with the new online keys only
    result = run_check(world.config("1.1.0"))  # still shipped with root v1: walks to v2
    assert result.outcome is Outcome.INSTALLED, result.detail
    assert world.current() == "1.2.0"
    assert (world.tmp / "state" / "update" / "metadata" / "root_history" / "2.root.json").exists()
    # a root v3 signed by the retired key alone is refused
    md: Metadata[Root] = world.repo.root()
    md.signed.version = 3
    md.signatures.clear()
    md.sign(world.root_signers[0])
    world.repo.write("3.root.json", md)
    refused = run_check(world.config("1.2.0"))
    assert refused.outcome is Outcome.BAD_SIGNATURE, refused.detail


def test_no_update_starts_during_a_remote_session(world: World) -> None:
    world.publish("1.1.0")
    world.requests.clear()
    with active.hold(world.session_lock) as taken:
        assert taken
        result = run_check(world.config("1.0.0"))
    assert result.outcome is Outcome.DEFERRED_SESSION
    said(result.outcome, result.message)
    assert world.requests == []  # not even the metadata was fetched
    assert world.current() is None
    assert run_check(world.config("1.0.0")).outcome is Outcome.INSTALLED  # after the session


def test_a_failed_install_leaves_the_current_version(world: World) -> None:
    world.publish("1.1.0")
    assert run_check(world.config("1.0.0")).outcome is Outcome.INSTALLED
    world.publish("1.2.0", data=archive("1.2.0", link=True))  # signed, but not installable
    result = run_check(world.config("1.1.0"))
    assert result.outcome is Outcome.INSTALL_FAILED, result.detail
    said(result.outcome, result.message)
    assert world.current() == "1.1.0"
    assert sorted(p.name for p in (world.tmp / "data" / "versions").iterdir()) == ["1.1.0"]
    world.publish("1.3.0", data=archive("1.3.0", marker="9.9.9"))  # marker disagrees
    assert run_check(world.config("1.1.0")).outcome is Outcome.INSTALL_FAILED
    assert world.current() == "1.1.0"


def test_unreachable_server_and_foreign_tls(world: World, tmp_path: Path) -> None:
    world.publish("1.1.0")
    cfg = world.config("1.0.0")
    cfg.context = ssl.create_default_context(cafile=None)  # does not trust the test CA
    cfg.context.load_verify_locations(cadata=pki.make_ca("Other CA").cert_pem.decode())
    result = run_check(cfg)
    assert result.outcome is Outcome.UNREACHABLE, result.detail
    said(result.outcome, result.message)
    cfg = world.config("1.0.0")
    cfg.url = "https://127.0.0.1:1/"
    assert run_check(cfg).outcome is Outcome.UNREACHABLE
