"""The per-user install step: an archive with anything but files and directories, or with a path
out of its directory, is refused and leaves ``current`` where it was; the switch is one rename."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from agent.update import install


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _good(path: Path, version: str) -> Path:
    return _tar(path, [_file("byod-agent-version", version.encode()),
                       _file("bin/byod-agent", b"#!/bin/sh\n")])


def test_install_and_switch(tmp_path: Path) -> None:
    base = tmp_path / "data"
    install.install_archive(_good(tmp_path / "a.tar.gz", "1.1.0"), "1.1.0", base)
    assert install.current_version(base) == "1.1.0"
    install.install_archive(_good(tmp_path / "b.tar.gz", "1.2.0"), "1.2.0", base)
    assert install.current_version(base) == "1.2.0"
    assert (base / "current" / "bin" / "byod-agent").is_file()
    assert not [p for p in base.iterdir() if p.name.startswith(".current")]


@pytest.mark.parametrize("member", [
    _file("../escape"), _file("/etc/evil"), _file("a\\..\\b"),
])
def test_unsafe_names_are_refused(tmp_path: Path, member: tuple[tarfile.TarInfo, bytes]) -> None:
    base = tmp_path / "data"
    install.install_archive(_good(tmp_path / "ok.tar.gz", "1.0.0"), "1.0.0", base)
    bad = _tar(tmp_path / "bad.tar.gz", [_file("byod-agent-version", b"1.1.0"), member])
    with pytest.raises(install.InstallError):
        install.install_archive(bad, "1.1.0", base)
    assert install.current_version(base) == "1.0.0"
    assert sorted(p.name for p in (base / "versions").iterdir()) == ["1.0.0"]
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE,
                                  tarfile.CHRTYPE])
def test_links_and_devices_are_refused(tmp_path: Path, kind: bytes) -> None:
    info = tarfile.TarInfo("thing")
    info.type = kind
    info.linkname = "/etc/shadow"
    bad = _tar(tmp_path / "bad.tar.gz", [_file("byod-agent-version", b"1.1.0"), (info, b"")])
    with pytest.raises(install.InstallError):
        install.install_archive(bad, "1.1.0", tmp_path / "data")
    assert install.current_version(tmp_path / "data") is None


def test_truncated_archive_and_wrong_marker(tmp_path: Path) -> None:
    good = _good(tmp_path / "g.tar.gz", "1.1.0")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good.read_bytes()[:40])
    with pytest.raises(install.InstallError):
        install.install_archive(cut, "1.1.0", tmp_path / "data")
    with pytest.raises(install.InstallError):
        install.install_archive(good, "1.2.0", tmp_path / "data")  # marker says 1.1.0


def test_group_writable_bits_are_dropped(tmp_path: Path) -> None:
    info, data = _file("bin/tool", b"x")
    info.mode = 0o777
    arc = _tar(tmp_path / "m.tar.gz", [_file("byod-agent-version", b"1.0.0"), (info, data)])
    final = install.install_archive(arc, "1.0.0", tmp_path / "data")
    assert not os.stat(final / "bin" / "tool").st_mode & 0o022


def test_package_managed_and_msiexec() -> None:
    assert not install.package_managed(Path("/root/.local/share/byod-agent/current/x"))
    argv = install.msiexec_argv(Path("C:/Users/a/AppData/Local/Temp/u.msi"), Path("C:/l.log"))
    assert argv[:3] == ["msiexec.exe", "/i", "C:/Users/a/AppData/Local/Temp/u.msi"]
    assert "MSIINSTALLPERUSER=1" in argv and "/qn" in argv
    with pytest.raises(install.InstallError):
        install.msiexec_argv(Path('C:/a" /x.msi'), Path("l"))
