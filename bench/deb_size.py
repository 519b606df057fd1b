"""The agent's .deb against a .deb of bench/minimal_tray.py built by the same installer spec.

installer/build takes ``BYOD_SPEC_ENTRY`` (the script to freeze) and ``BYOD_SPEC_NAME`` (the
package name) from the environment, so both packages share every spec setting (excluded Qt
plugins, stripping, compression): the ratio is what the agent itself adds. Beside each .deb its
installed size (the sum of the files ``dpkg-deb -c`` lists: what lands on the disk), and where
the agent's extra installed bytes are (the files only its package has, by top directory).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from pathlib import Path

from bench.common import REPO, Options, Result, Unavailable, ratio, scratch_dir

KEYS = ("deb_size_vs_minimal", "deb_installed_vs_minimal")
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


def contents(deb: Path) -> dict[str, int]:
    """Path -> size of every regular file in the package (``dpkg-deb -c``)."""
    out = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    files: dict[str, int] = {}
    for line in out.splitlines():
        fields = line.split(None, 5)
        if len(fields) == 6 and fields[0].startswith("-") and fields[2].isdigit():
            files[fields[5].removeprefix("./")] = int(fields[2])
    return files


def _group(path: str) -> str:
    """opt/NAME/_internal/PySide6/Qt/lib/x.so -> PySide6/Qt/lib; top-level files by kind."""
    parts = path.split("/")
    inner = parts[parts.index("_internal") + 1:] if "_internal" in parts else parts[-1:]
    if len(inner) == 1:
        return inner[0] if not inner[0].startswith("lib") else "(shared libraries)"
    return "/".join(inner[:3] if inner[0] == "PySide6" else inner[:1])


def extra_by_group(agent: dict[str, int], minimal: dict[str, int]) -> list[tuple[str, int]]:
    def rel(p: str) -> str:
        return p.split("/_internal/", 1)[-1]
    have = {rel(p) for p in minimal}
    sizes: Counter[str] = Counter()
    for path, size in agent.items():
        if rel(path) not in have:
            sizes[_group(path)] += size
    return sizes.most_common(8)


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
        files_a, files_m = contents(agent_deb), contents(minimal_deb)
    ia, im = sum(files_a.values()), sum(files_m.values())
    r, ri = ratio(a, m), ratio(ia, im)
    rows = [f"{agent_deb.name} {a / MB:.1f} MB (built in {t_agent:.0f} s) vs "
            f"{minimal_deb.name} {m / MB:.1f} MB ({t_min:.0f} s) -> {r}",
            f"installed: agent {ia / MB:.1f} MB vs minimal {im / MB:.1f} MB -> {ri}; "
            "installed bytes only the agent has:"]
    rows += [f"  {size / MB:6.2f} MB  {group}" for group, size in extra_by_group(files_a, files_m)]
    return Result("deb_size", {"deb_size_vs_minimal": r, "deb_installed_vs_minimal": ri}, rows)
