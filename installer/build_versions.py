"""The version numbers of one build, shared by installer/build.py (.deb) and
installer/windows/build.ps1 (MSI); standard library only, so it runs on every build runner.

    python installer/build_versions.py VERSION [--build-number N] --edition city|demo

prints JSON ``{"display": "0.1.0+city2", "deb": "0.1.0+city2", "msi": "0.1.2"}`` or exits 2
with one line saying what is wrong (a build number for a DEMO build, out of range, a version
an MSI cannot hold).
"""

from __future__ import annotations

import argparse
import json
import sys

MAX_BUILD = 999  # MSI: the build number shares the third field with the patch (patch*1000+N)


def deb_version(version: str, build: int | None) -> str:
    """0.1.0 -> 0.1.0+city7: every rebuild upgrades the last (dpkg compares 7 < 10 numerically),
    and the next release (0.1.1) still sorts above every 0.1.0+cityN."""
    return version if build is None else f"{version}+city{build}"


def msi_version(version: str, build: int | None) -> str:
    """MSI ProductVersion major.minor.build (major, minor < 256; build < 65536): Windows Installer
    compares only these three, so the city build goes into the third: patch*1000 + N."""
    major, minor, patch = (int(x) for x in version.split(".")[:3])
    third = patch * 1000 + (build or 0)
    if major > 255 or minor > 255 or third > 65535:
        raise ValueError(f"{version} build {build} does not fit an MSI ProductVersion")
    return f"{major}.{minor}.{third}"


def check_build_number(build: int | None, *, demo: bool) -> None:
    """ValueError when ``build`` cannot be used: out of 1..MAX_BUILD, or given to a DEMO build."""
    if build is not None and not 1 <= build <= MAX_BUILD:
        raise ValueError(f"--build-number must be 1..{MAX_BUILD}")
    if build is not None and demo:
        raise ValueError("--build-number is for a city build (--config); DEMO builds have none")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build_versions.py", description=__doc__.split("\n")[0])
    parser.add_argument("version")
    parser.add_argument("--build-number", type=int, metavar="N")
    parser.add_argument("--edition", required=True, choices=("city", "demo"))
    args = parser.parse_args(argv)
    try:
        check_build_number(args.build_number, demo=args.edition == "demo")
        out = {"display": deb_version(args.version, args.build_number),
               "deb": deb_version(args.version, args.build_number),
               "msi": msi_version(args.version, args.build_number)}
    except ValueError as exc:
        print(f"build: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
