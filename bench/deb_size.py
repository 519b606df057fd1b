"""The agent's .deb against a .deb of bench/minimal_tray.py built by the same installer spec.

installer/build takes ``BYOD_SPEC_ENTRY`` (the script to freeze) and ``BYOD_SPEC_NAME`` (the
package name) from the environment, so both packages share every spec setting (excluded Qt
plugins, stripping, compression): the ratio is what the agent itself adds.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from bench.common import REPO, Options, Result, Unavailable, ratio, scratch_dir

KEYS = ("deb_size_vs_minimal",)
BUILD = REPO / "installer" / "build"
MB = 1024 * 1024


def _build(dist: Path, env_extra: dict[str, str], log: Path) -> tuple[Path, float]:
    # A private PyInstaller cache: concurrent builds sharing ~/.cache/pyinstaller race on it.
    env = dict(os.environ, PYINSTALLER_CONFIG_DIR=str(dist.parent / f"{dist.name}-pyi"),
               **env_extra)
    start = time.perf_counter()
    with log.open("wb") as fh:
        proc = subprocess.run([str(BUILD), "linux", "--dist", str(dist)], cwd=REPO, env=env,
                              stdout=fh, stderr=subprocess.STDOUT, timeout=3600, check=False)
    elapsed = time.perf_counter() - start
    debs = sorted(dist.rglob("*.deb"))
    if proc.returncode != 0 or not debs:
        tail = log.read_text(errors="replace")[-400:]
        raise RuntimeError(f"installer/build exited {proc.returncode}, no .deb: {tail}")
    return debs[0], elapsed


def run(opts: Options) -> Result:
    if opts.quick:
        return Result.skipped("deb_size", KEYS, "skipped in --quick (a PyInstaller build "
                              "takes minutes)")
    if not (BUILD.exists() and os.access(BUILD, os.X_OK)):
        raise Unavailable("installer/build not available")
    with scratch_dir("deb") as root:
        agent_deb, t_agent = _build(root / "agent", {}, root / "agent.log")
        minimal_deb, t_min = _build(root / "minimal", {
            "BYOD_SPEC_ENTRY": str(REPO / "bench" / "minimal_tray.py"),
            "BYOD_SPEC_NAME": "byod-minimal-tray"}, root / "minimal.log")
        a, m = agent_deb.stat().st_size, minimal_deb.stat().st_size
    r = ratio(a, m)
    rows = [f"{agent_deb.name} {a / MB:.1f} MB (built in {t_agent:.0f} s) vs "
            f"{minimal_deb.name} {m / MB:.1f} MB ({t_min:.0f} s) -> {r}"]
    return Result("deb_size", {"deb_size_vs_minimal": r}, rows)
