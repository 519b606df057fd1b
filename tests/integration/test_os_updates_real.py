"""os_updates with the real apt-get and the real runner.

1. The host itself (Debian 12 with many pending updates, some from Debian-Security): fail, quickly.
2. An isolated apt root in a temporary directory: a dpkg status file, a flat file: repository whose
   Release says ``Origin: Debian-Security``, fetched offline by a real ``apt-get update``. The probe
   runs the real ``apt-get -s dist-upgrade`` against it (ctx.root doubles as apt's Dir), so the
   pass, fail and stale-lists branches are all exercised by real apt, without touching the host.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.core.subprocess_runner import SubprocessRunner
from agent.posture.checks.os_updates import check as os_updates
from agent.posture.context import ProbeContext, default_context
from agent.posture.engine import run_one
from agent.posture.model import Status
from tests.conftest import require, require_linux_root, require_tool

pytestmark = pytest.mark.timeout(120)

PACKAGE = """Package: byod-demo-lib
Version: {version}
Architecture: all
Maintainer: BYOD Agent tests <tests@example.invalid>
Installed-Size: 1
Section: libs
Priority: optional
Description: placeholder package for the os_updates test
"""


def _host_uses_apt() -> bool:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return False
    return "debian" in text.lower()


def test_real_host_probe_fails_with_security_updates() -> None:
    require_tool("apt-get")
    require(_host_uses_apt(), "host is not Debian-based")
    ctx = default_context()
    start = time.monotonic()
    result = run_one("os_updates", os_updates.check, ctx)
    elapsed = time.monotonic() - start
    assert result.status is Status.FAIL, (result.summary, result.evidence)
    assert result.evidence["package_manager"] == "apt"
    assert result.evidence["pending_security"] > 0
    assert result.evidence["pending_total"] >= result.evidence["pending_security"]
    assert elapsed < 10, f"apt simulation took {elapsed:.1f} s"


def _apt_options(root: Path) -> list[str]:
    return ["-o", f"Dir={root}/", "-o", f"Dir::State::status={root}/var/lib/dpkg/status",
            "-o", "Debug::NoLocking=1"]


def _apt_root(tmp: Path, installed: str, candidate: str) -> Path:
    root = tmp / "root"
    for d in ("etc/apt/apt.conf.d", "etc/apt/preferences.d", "etc/apt/sources.list.d",
              "var/lib/apt/lists/partial", "var/lib/dpkg", "var/cache/apt/archives/partial"):
        (root / d).mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n'
                                         'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    (root / "var/lib/dpkg/status").write_text(
        PACKAGE.format(version=installed).replace("Architecture:", "Status: install ok installed\n"
                                                  "Architecture:", 1))
    repo = tmp / "repo"
    repo.mkdir()
    packages = PACKAGE.format(version=candidate) + (
        f"Filename: ./byod-demo-lib_{candidate}_all.deb\nSize: 1000\n"
        "SHA256: " + "0" * 64 + "\n\n")
    (repo / "Packages").write_text(packages)
    digest = hashlib.sha256(packages.encode()).hexdigest()
    (repo / "Release").write_text(
        "Origin: Debian-Security\nLabel: Debian-Security\nSuite: oldstable-security\n"
        "Codename: bookworm-security\nVersion: 12\n"
        f"Date: {datetime.now(UTC).strftime('%a, %d %b %Y %H:%M:%S UTC')}\n"
        f"SHA256:\n {digest} {len(packages.encode())} Packages\n")
    (root / "etc/apt/sources.list").write_text(f"deb [trusted=yes] file:{repo} ./\n")
    env = {**os.environ, "LC_ALL": "C"}
    done = subprocess.run(["apt-get", *_apt_options(root), "update"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert list((root / "var/lib/apt/lists").glob("*_Release")), done.stdout
    return root


def _ctx(root: Path) -> ProbeContext:
    return ProbeContext(os="linux", runner=SubprocessRunner(os.environ, default_timeout=30),
                        root=root, home=root, env={})


@pytest.fixture
def apt_ready() -> None:
    require_tool("apt-get")
    require_linux_root()  # `apt-get update` hands the download to the _apt sandbox user


def test_isolated_root_with_a_pending_security_update_fails(apt_ready: None,
                                                            tmp_path: Path) -> None:
    root = _apt_root(tmp_path, installed="1.0-1", candidate="1.0-2")
    result = run_one("os_updates", os_updates.check, _ctx(root))
    assert result.status is Status.FAIL, (result.summary, result.evidence)
    assert result.evidence["security_packages"] == ["byod-demo-lib"]
    assert result.evidence["pending_total"] == 1 and result.evidence["metadata_age_days"] == 0


def test_isolated_root_fully_updated_passes(apt_ready: None, tmp_path: Path) -> None:
    root = _apt_root(tmp_path, installed="1.0-2", candidate="1.0-2")
    result = run_one("os_updates", os_updates.check, _ctx(root))
    assert result.status is Status.PASS, (result.summary, result.evidence)
    assert result.evidence["pending_total"] == 0


def test_isolated_root_with_stale_lists_is_unknown(apt_ready: None, tmp_path: Path) -> None:
    root = _apt_root(tmp_path, installed="1.0-2", candidate="1.0-2")
    old = (datetime.now(UTC) - timedelta(days=90)).timestamp()
    for f in (root / "var/lib/apt/lists").glob("*_Release"):
        os.utime(f, (old, old))
    result = run_one("os_updates", os_updates.check, _ctx(root))
    assert result.status is Status.UNKNOWN, (result.summary, result.evidence)
    assert result.summary.key == "os_updates.linux.lists_stale"
