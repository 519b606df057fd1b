"""disk_encryption against this machine's real /proc, /sys and lsblk.

The build VM's root is a plain ext4 on /dev/vda with no device-mapper (RECIPES.md): the honest
answer is ``fail``. A second test mounts a real loop device and puts the home directory on it, so
the loop -> backing file -> /dev/vda chain is walked through the kernel's own sysfs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.core.subprocess_runner import SubprocessRunner
from agent.posture.checks.disk_encryption import check as disk_encryption
from agent.posture.context import default_context
from agent.posture.model import Status
from tests.conftest import require, require_linux_root, require_tool
from tests.fakes import make_ctx


def _root_is_plain_vda() -> bool:
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        return any(line.split(" ")[4] == "/" and " - ext4 /dev/vda " in line for line in fh)


@pytest.fixture
def linux_vda() -> None:
    require(sys.platform.startswith("linux"), "needs Linux")
    require(_root_is_plain_vda(), "root is not the build VM's plain ext4 /dev/vda")


@pytest.mark.usefixtures("linux_vda")
def test_real_root_is_reported_plain() -> None:
    require_tool("lsblk")
    ctx = default_context()
    assert ctx.os == "linux"
    f = disk_encryption.check(ctx)
    assert f.status is Status.FAIL, (f.summary, f.evidence)
    assert f.summary.key == "disk_encryption.linux.plain"
    assert f.summary.params["device"] == "/dev/vda"
    root = f.evidence["root"]
    assert root["device"] == "/dev/vda" and root["fstype"] == "ext4"
    assert root["chain"] == [{"device": "/dev/vda", "kind": "disk", "state": "plain"}]
    assert root["lsblk"] == "plain"  # the real lsblk agrees with the sysfs walk
    assert f.evidence["lsblk_cross_check"] is True
    assert f.remediation == "disk_encryption.linux"


@pytest.fixture
def loop_home(tmp_path: Path) -> Iterator[Path]:
    require_linux_root()
    require_tool("mkfs.ext4", "mount", "umount", "losetup")
    image = tmp_path / "home.img"
    with image.open("wb") as fh:
        fh.truncate(16 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    mnt = tmp_path / "home"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=False,
                             capture_output=True, text=True)
    require(mounted.returncode == 0, f"cannot mount a loop device here: {mounted.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)  # also detaches the auto-loop device


@pytest.mark.usefixtures("linux_vda")
def test_real_loop_home_follows_backing_file_to_vda(loop_home: Path) -> None:
    ctx = make_ctx("linux", runner=SubprocessRunner(dict(os.environ)), root=Path("/"),
                   home=loop_home / "staff")
    f = disk_encryption.check(ctx)
    assert f.status is Status.FAIL
    home = f.evidence["home"]
    assert home["mount_point"] == str(loop_home)
    kinds = [(n["device"], n["kind"]) for n in home["chain"]]
    assert kinds[0][0].startswith("/dev/loop") and kinds[0][1] == "loop"
    assert kinds[-1] == ("/dev/vda", "disk")
    assert home["chain"][0]["backing_file"] == str(loop_home.parent / "home.img")
    assert home["lsblk"].startswith("not comparable")

