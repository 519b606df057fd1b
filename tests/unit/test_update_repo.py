"""``byod-admin update-repo`` through its real command line: keys encrypted on disk, a repository
that the agent's own TUF client accepts (checked file by file with tuf.api), refusals IT sees in
its language; and ``build-config`` embedding the managed settings, the TUF root and release keys."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata, Root, Targets

from admin import buildconfig, update_repo
from admin import cli as admin
from agent.update import model
from tests.unit.test_buildconfig import city_files

PASS = "correct horse battery staple"


def _keys(tmp: Path) -> dict[str, Path]:
    pw = tmp / "pass.txt"
    pw.write_text(PASS + "\n")
    keys = {}
    for name in ("root", "targets", "snapshot", "timestamp", "release", "root2"):
        path = tmp / "keys" / f"{name}.key"
        assert admin.main(["update-repo", "keygen", "--out", str(path),
                           "--passphrase-file", str(pw)]) == 0
        keys[name] = path
    return keys


def _online(tmp: Path, keys: dict[str, Path]) -> list[str]:
    out = []
    for role in update_repo.ONLINE:
        out += [f"--{role}-key", str(keys[role])]
    return [*out, "--passphrase-file", str(tmp / "pass.txt")]


def _dist(tmp: Path, keys: dict[str, Path], version: str) -> Path:
    dist = tmp / f"dist-{version}"
    dist.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("byod-agent-version")
        info.size = len(version)
        tar.addfile(info, io.BytesIO(version.encode()))
    (dist / f"byod-agent-{version}-linux.tar.gz").write_bytes(buf.getvalue())
    assert admin.main(["release", "sign", str(dist), "--key", str(keys["release"]),
                       "--passphrase-file", str(tmp / "pass.txt")]) == 0
    return dist


def _add(tmp: Path, keys: dict[str, Path], repo: Path, version: str, channel: str) -> int:
    dist = _dist(tmp, keys, version)
    return admin.main(["update-repo", "add", "--repo", str(repo), "--dist", str(dist),
                       "--artifact", f"byod-agent-{version}-linux.tar.gz", "--version", version,
                       "--os", "linux", "--channel", channel,
                       "--release-pub", str(keys["release"]) + ".pub", *_online(tmp, keys)])


def test_cli_lifecycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = _keys(tmp_path)
    for path in keys.values():
        assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        assert path.stat().st_mode & 0o077 == 0
    repo = tmp_path / "repo"
    assert admin.main(["update-repo", "init", "--repo", str(repo), "--root-key",
                       str(keys["root"]), "--root-passphrase-file", str(tmp_path / "pass.txt"),
                       *_online(tmp_path, keys)]) == 0
    assert _add(tmp_path, keys, repo, "1.1.0", "pilot") == 0
    assert admin.main(["update-repo", "promote", "--repo", str(repo), "--version", "1.1.0",
                       "--os", "linux", *_online(tmp_path, keys)]) == 0
    capsys.readouterr()
    assert admin.main(["update-repo", "status", "--repo", str(repo)]) == 0
    out = capsys.readouterr().out
    assert "pilot/linux" in out and "general/linux" in out and "1.1.0" in out
    targets: Metadata[Targets] = update_repo.Repo(repo).targets()
    assert set(targets.signed.targets) >= {model.index_path("general", "linux"),
                                           "general/linux/1.1.0/SHA256SUMS.sig"}
    root: Metadata[Root] = Metadata.from_file(str(repo / "metadata" / "1.root.json"))
    root.signed.verify_delegate("targets", targets.signed_bytes, targets.signatures)
    for info in targets.signed.targets.values():  # consistent snapshot file names exist
        d, _, name = info.path.rpartition("/")
        blob = repo / "targets" / d / f"{info.hashes['sha256']}.{name}"
        info.verify_length_and_hashes(blob.read_bytes())
    # an older or equal version on the same channel is refused with a message, exit 2
    assert _add(tmp_path, keys, repo, "1.0.5", "pilot") == 2
    assert "1.0.5" in capsys.readouterr().err
    # the daily timestamp and a root rotation
    assert admin.main(["update-repo", "timestamp", "--repo", str(repo), "--timestamp-key",
                       str(keys["timestamp"]), "--passphrase-file",
                       str(tmp_path / "pass.txt")]) == 0
    assert admin.main(["update-repo", "rotate-root", "--repo", str(repo), "--old-root-key",
                       str(keys["root"]), "--new-root-key", str(keys["root2"]),
                       "--root-passphrase-file", str(tmp_path / "pass.txt")]) == 0
    two: Metadata[Root] = Metadata.from_file(str(repo / "metadata" / "2.root.json"))
    root.signed.verify_delegate("root", two.signed_bytes, two.signatures)  # old keys signed
    two.signed.verify_delegate("root", two.signed_bytes, two.signatures)  # and the new ones
    # the retired root key can no longer rotate
    assert admin.main(["update-repo", "rotate-root", "--repo", str(repo), "--old-root-key",
                       str(keys["root"]), "--new-root-key", str(keys["root"]),
                       "--root-passphrase-file", str(tmp_path / "pass.txt")]) == 2


def test_unsigned_release_is_not_published(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    keys = _keys(tmp_path)
    repo = tmp_path / "repo"
    assert admin.main(["update-repo", "init", "--repo", str(repo), "--root-key",
                       str(keys["root"]), "--root-passphrase-file", str(tmp_path / "pass.txt"),
                       *_online(tmp_path, keys)]) == 0
    dist = _dist(tmp_path, keys, "1.1.0")
    (dist / "byod-agent-1.1.0-linux.tar.gz").write_bytes(b"changed after signing")
    capsys.readouterr()
    assert admin.main(["update-repo", "add", "--repo", str(repo), "--dist", str(dist),
                       "--artifact", "byod-agent-1.1.0-linux.tar.gz", "--version", "1.1.0",
                       "--os", "linux", "--release-pub", str(keys["release"]) + ".pub",
                       *_online(tmp_path, keys)]) == 2
    assert "mismatch" in capsys.readouterr().err
    assert update_repo.offered(update_repo.Repo(repo), "pilot", "linux") is None


def test_root_key_cannot_be_an_online_key(tmp_path: Path) -> None:
    keys = _keys(tmp_path)
    args = ["update-repo", "init", "--repo", str(tmp_path / "r"), "--root-key",
            str(keys["targets"]), "--root-passphrase-file", str(tmp_path / "pass.txt"),
            *_online(tmp_path, keys)]
    assert admin.main(args) == 2


def test_build_config_embeds_managed_settings_root_and_release_keys(tmp_path: Path) -> None:
    keys = _keys(tmp_path)
    repo = tmp_path / "repo"
    assert admin.main(["update-repo", "init", "--repo", str(repo), "--root-key",
                       str(keys["root"]), "--root-passphrase-file", str(tmp_path / "pass.txt"),
                       *_online(tmp_path, keys)]) == 0
    city = city_files(tmp_path / "it")
    managed_toml = tmp_path / "managed.toml"
    managed_toml.write_text('StartAtLogin = true\nUpdateChannel = "pilot"\n'
                            'UpdateURL = "https://updates.city.example/byod/"\n')
    out = tmp_path / "config"
    buildconfig.make_config(city.policy, [city.pub], out, managed=managed_toml,
                            update_root=repo / "metadata" / "1.root.json",
                            release_keys=[Path(str(keys["release"]) + ".pub")])
    doc = json.loads((out / "managed.json").read_text())
    assert doc == {"format": "byod-managed/1", "settings": {
        "StartAtLogin": True, "UpdateChannel": "pilot",
        "UpdateURL": "https://updates.city.example/byod/"}}
    assert (out / "update" / "root.json").read_bytes() == \
        (repo / "metadata" / "1.root.json").read_bytes()
    assert (out / "update" / "release-keys" / "release.key.pub").is_file()
    buildconfig.check_config(out)  # hashes of the new files are in the manifest
    bad = tmp_path / "bad.toml"
    bad.write_text('UpdateChannel = "beta"\n')
    with pytest.raises(buildconfig.ConfigRefused) as exc:
        buildconfig.make_config(city.policy, [city.pub], tmp_path / "c2", managed=bad)
    assert exc.value.message.key == "buildconfig.refused.managed_unusable"
    with pytest.raises(buildconfig.ConfigRefused):
        buildconfig.make_config(city.policy, [city.pub], tmp_path / "c3",
                                update_root=managed_toml)
