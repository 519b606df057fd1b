"""The real .deb: built by installer/build (PyInstaller onedir + dpkg-deb), installed with apt,
the INSTALLED /usr/bin/byod-agent run, removed. A DEMO build and a customized build.

Slow (PyInstaller, xz): marked ``installer`` so it can be deselected (-m "not installer"); CI runs
it. BYOD_DEB=path reuses an already built DEMO .deb; the customized build reuses the PyInstaller
output of the DEMO one (installer/build --reuse-app), so only packaging runs twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import __version__
from tests.conftest import REPO, require, require_linux_root, require_tool
from tests.unit.test_buildconfig import DEMO_PUB, city_config

pytestmark = [pytest.mark.installer, pytest.mark.real, pytest.mark.timeout(900)]

BUILD = REPO / "installer" / "build.py"
ENV_EN = {"LANG": "en_US.UTF-8", "LC_ALL": "C.UTF-8", "BYOD_REUSE_APP": "1"}


def _build(dist: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **ENV_EN)
    return subprocess.run([sys.executable, str(BUILD), "linux", "--dist", str(dist), *extra],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=900,
                          check=False)


def _built_deb(out: subprocess.CompletedProcess[str]) -> Path:
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return Path(json.loads(out.stdout.strip().splitlines()[-1])["deb"])


def _contents(deb: Path) -> list[str]:
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                             check=True).stdout
    return [ln.split()[5].removeprefix(".") for ln in listing.splitlines()]


@pytest.fixture(scope="module")
def tools() -> None:
    require_linux_root()
    require_tool("dpkg-deb", "dpkg", "apt-get", "readelf")
    require(__import__("importlib").util.find_spec("PyInstaller") is not None,
            "PyInstaller is not installed (pip install -e '.[build]')")


@pytest.fixture(scope="module")
def demo_deb(tools: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("BYOD_DEB")
    if given:
        return Path(given)
    return _built_deb(_build(tmp_path_factory.mktemp("dist")))


class Installed:
    def __init__(self, home: Path) -> None:
        self.home = home

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.home), "LANG": "C.UTF-8",
               "XDG_CONFIG_HOME": str(self.home / ".config")}
        return subprocess.run(["/usr/bin/byod-agent", *argv], capture_output=True, text=True,
                              env=env, cwd="/", timeout=120, check=False)


def _install(deb: Path, home: Path) -> Iterator[Installed]:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    out = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", str(deb)],
                         capture_output=True, text=True, env=env, timeout=600, check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    try:
        yield Installed(home)
    finally:
        subprocess.run(["dpkg", "--purge", "byod-agent", "byod-agent-demo"], capture_output=True,
                       check=False)


@pytest.fixture
def installed_demo(demo_deb: Path, tmp_path: Path) -> Iterator[Installed]:
    yield from _install(demo_deb, tmp_path)


def test_demo_package_metadata_and_files(demo_deb: Path) -> None:
    assert demo_deb.name == f"byod-agent-demo_{__version__}_amd64.deb"
    control = subprocess.run(["dpkg-deb", "-f", str(demo_deb), "Package", "Depends"],
                             capture_output=True, text=True, check=True).stdout
    assert "Package: byod-agent-demo\n" in control
    relations = subprocess.run(["dpkg-deb", "-f", str(demo_deb), "Conflicts", "Replaces"],
                               capture_output=True, text=True, check=True).stdout
    assert relations == "Conflicts: byod-agent\nReplaces: byod-agent\n"
    runtime = [ln for ln in (REPO / ".ci/apt-runtime.txt").read_text().splitlines()
               if ln and not ln.startswith("#")]
    assert all(pkg in control for pkg in runtime)
    assert "freerdp3-x11 | freerdp2-x11" in control
    files = _contents(demo_deb)
    for expected in ("/opt/byod-agent/byod-agent", "/usr/bin/byod-agent",
                     "/etc/xdg/autostart/byod-agent.desktop",
                     "/usr/share/applications/byod-agent.desktop",
                     "/opt/byod-agent/_internal/resources/trust/demo-DEMO.pub",
                     "/opt/byod-agent/_internal/resources/i18n/ja/core.json"):
        assert expected in files
    assert not [f for f in files if "/tests/" in f or "conftest" in f or "pytest" in f]
    plugins = [f for f in files if "/Qt/plugins/" in f and f.endswith(".so")]
    assert any(f.endswith("libqxcb.so") for f in plugins)
    assert not [f for f in plugins if "/platformthemes/" in f or "/qmltooling/" in f]


def test_installed_agent_runs_and_is_removed_cleanly(installed_demo: Installed) -> None:
    version = installed_demo.run("--version")
    assert version.stdout.strip() == f"byod-agent {__version__}", version.stderr
    check = installed_demo.run("check", "--json")
    assert check.returncode == 1, check.stderr  # the root disk here is honestly not encrypted
    report = json.loads(check.stdout)
    by_id = {c["id"]: c["status"] for c in report["checks"]}
    assert by_id["disk_encryption"] == "fail"
    assert by_id["os_supported"] == "pass"
    shown = installed_demo.run("policy", "show", "--lang", "en")
    assert "demo-city" in shown.stdout
    # installed files are read-only, including for root's umask-less copies
    resources = Path("/opt/byod-agent/_internal/resources")
    assert all(p.stat().st_mode & 0o222 == 0 for p in resources.rglob("*") if p.is_file())
    dangling = [p for p in Path("/opt/byod-agent").rglob("*") if p.is_symlink() and not p.exists()]
    assert dangling == []
    # maintainer scripts are idempotent: configuring again changes nothing and succeeds
    assert subprocess.run(["dpkg", "--configure", "-a"], check=False).returncode == 0
    autostart = Path("/etc/xdg/autostart/byod-agent.desktop")
    assert "TryExec=byod-agent" in autostart.read_text()
    subprocess.run(["dpkg", "-r", "byod-agent-demo"], capture_output=True, check=True)
    assert not Path("/opt/byod-agent").exists()
    assert not Path("/usr/bin/byod-agent").exists()
    # the conffile stays until purge, inert: its TryExec binary is gone
    subprocess.run(["dpkg", "--purge", "byod-agent-demo"], capture_output=True, check=True)
    assert not autostart.exists()
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "byod-agent-demo"],
                            capture_output=True, text=True, check=False)
    assert "installed" not in status.stdout.replace("not-installed", "")


def test_customized_build_refuses_a_demo_anchor(tools: None, tmp_path: Path) -> None:
    _, config = city_config(tmp_path)
    (config / "trust").chmod(0o755)
    (config / "trust" / "city-spare.pub").write_bytes(DEMO_PUB.read_bytes())
    out = _build(tmp_path / "dist", "--config", str(config))
    assert out.returncode == 2
    assert "changed after `byod-admin build-config`" in out.stderr
    assert not list((tmp_path / "dist").glob("*.deb"))


@pytest.fixture(scope="module")
def city_debs(demo_deb: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two city builds, build numbers 1 and 2, of one configuration (packaging only: the
    PyInstaller output of the DEMO build is reused)."""
    root = tmp_path_factory.mktemp("city")
    _, config = city_config(root)
    one = _built_deb(_build(root / "dist", "--config", str(config), "--build-number", "1"))
    two = _built_deb(_build(root / "dist", "--config", str(config), "--build-number", "2"))
    return one, two


def _installed_version(package: str) -> str:
    return subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True,
                          text=True, check=False).stdout


def test_customized_deb_ships_the_citys_policy_and_no_demo(city_debs: tuple[Path, Path],
                                                           tmp_path: Path) -> None:
    deb = city_debs[0]
    assert deb.name == f"byod-agent_{__version__}+city1_amd64.deb"
    fields = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version", "Conflicts"],
                            capture_output=True, text=True, check=True).stdout
    assert fields == (f"Package: byod-agent\nVersion: {__version__}+city1\n"
                      "Conflicts: byod-agent-demo\n")
    files = _contents(deb)
    assert "/opt/byod-agent/_internal/resources/trust/city-example-2026.pub" in files
    assert "/opt/byod-agent/_internal/resources/trust/city-ca.pem" in files  # --city-ca
    assert "/opt/byod-agent/_internal/resources/build-config.json" in files
    assert not [f for f in files if "demo" in f.lower()]
    assert (deb.parent / f"byod-agent_{__version__}+city1.cdx.json").is_file()
    for agent in _install(deb, tmp_path / "home"):
        shown = agent.run("policy", "show", "--lang", "en")
        assert "city-example" in shown.stdout and "DEMO" not in shown.stdout, shown.stdout
        check = agent.run("check", "--json")
        assert check.returncode == 1
        assert json.loads(check.stdout)["policy"]["id"] == "city-example"


def test_city_build_2_upgrades_build_1_and_keeps_user_state(
        city_debs: tuple[Path, Path], demo_deb: Path, tmp_path: Path) -> None:
    one, two = city_debs
    assert subprocess.run(["dpkg", "--compare-versions", f"{__version__}+city2", "gt",
                           f"{__version__}+city1"], check=False).returncode == 0
    home = tmp_path / "home"
    for agent in _install(one, home):
        assert agent.run("check", "--json").returncode == 1  # writes the user's policy state
        state = home / ".local" / "state" / "byod-agent"
        before = sorted(p.relative_to(state).as_posix() for p in state.rglob("*") if p.is_file())
        assert "policy-state.json" in before
        serials = (state / "policy-state.json").read_text()
        marker = home / ".config" / "byod-agent" / "kept.txt"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("user data")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        out = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                              str(two)], capture_output=True, text=True, env=env, timeout=600,
                             check=False)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        assert "Unpacking byod-agent" in out.stdout and "over (" in out.stdout  # an upgrade
        assert _installed_version("byod-agent") == f"{__version__}+city2"
        after = sorted(p.relative_to(state).as_posix() for p in state.rglob("*") if p.is_file())
        assert before == after and (state / "policy-state.json").read_text() == serials
        assert marker.read_text() == "user data"
        assert agent.run("check", "--json").returncode == 1  # and it still works
        # the DEMO package conflicts with (and replaces) the city package: never both, never a
        # silent overwrite; dpkg announces the swap (seen 2026-12-01: "dpkg: yes, will remove
        # byod-agent in favour of byod-agent-demo")
        demo = subprocess.run(["dpkg", "-i", str(demo_deb)], capture_output=True, text=True,
                              check=False)
        assert "will remove byod-agent in favour of byod-agent-demo" in demo.stdout + demo.stderr
        assert _installed_version("byod-agent-demo") == __version__
        assert "installed" not in subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", "byod-agent"], capture_output=True, text=True,
            check=False).stdout.replace("not-installed", "")
