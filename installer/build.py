"""installer/build PLATFORM [--config DIR] [--dist DIR]: build BYOD Agent's installer.

linux (here): PyInstaller onedir -> IT's configuration laid in -> DEMO scan -> .deb + SBOM in dist/.
windows, macos: hands over to installer/windows/build.ps1 or installer/macos/build.sh on those
runners (executables for an OS are built on that OS).

Reproducibility: SOURCE_DATE_EPOCH (from the last git commit unless set) and PYTHONHASHSEED=0
for PyInstaller, dpkg-deb and the SBOM; every staged file gets that mtime. ``--release`` builds in
a fresh venv installed from the hash-pinned installer/requirements-build.lock; other builds use
the current environment and only warn when it differs from the lock (CI's test venv, faster).

BYOD_SPEC_ENTRY / BYOD_SPEC_NAME (see the spec) build another app with identical settings (the
benchmark's minimal tray app); it gets no configuration and no SBOM. ``--reuse-app`` (or
BYOD_REUSE_APP=1) skips PyInstaller when its inputs have not changed since the last build.
The last line printed is JSON: paths and sizes of what was built.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "installer"))  # build_versions: shared with windows/build.ps1

from build_versions import (  # noqa: E402
    check_build_number,
    deb_version,
)

from admin import buildconfig, sbom  # noqa: E402 (after the path above)
from agent.core import i18n  # noqa: E402 (after the path above)
from agent.core.messages import Message, msg  # noqa: E402
from agent.policy.errors import PolicyRefused  # noqa: E402

SPEC = ROOT / "installer" / "byod-agent.spec"
LOCK = ROOT / "installer" / "requirements-build.lock"
LINUX = ROOT / "installer" / "linux"
MAINTAINER = "City IT <byod-agent@example.invalid>"  # BYOD_MAINTAINER overrides it
FREERDP = "freerdp3-x11 | freerdp2-x11"  # trixie ships 3.x only; bookworm/jammy/noble 2.x
DEMO_SUFFIX = "-demo"  # the DEMO build is its own package: byod-agent-demo


def package_name(name: str, *, demo: bool) -> str:
    """byod-agent (the city's) or byod-agent-demo: two packages that conflict, never the same."""
    return name + DEMO_SUFFIX if demo else name


def conflicts_with(name: str, *, demo: bool) -> str:
    """The other package of the pair; Conflicts + Replaces lets apt swap them, announced."""
    base = name.removesuffix(DEMO_SUFFIX)
    return base if demo else base + DEMO_SUFFIX


class BuildError(Exception):
    pass


def say(message: Message, *, err: bool = False) -> None:
    print(i18n.render(message, i18n.detect_language()), file=sys.stderr if err else sys.stdout)


def project() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {"name": meta["name"], "version": meta["version"]}


def source_date_epoch() -> int:
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    out = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct"],
                         capture_output=True, text=True, check=False)
    return int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else 0


def locked_versions() -> dict[str, str]:
    out = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if line and line[0].isalnum() and "==" in line:
            name, _, rest = line.partition("==")
            out[sbom.normalize(name)] = rest.split()[0].rstrip("\\").strip()
    return out


def lock_drift(python: Path) -> list[str]:
    """Bundled distributions whose installed version differs from the lock."""
    code = ("import json; from admin import sbom; d, _ = sbom.closure(); "
            "print(json.dumps({k: v.version for k, v in d.items()}))")
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    installed: dict[str, str] = json.loads(out)
    lock = locked_versions()
    return sorted(f"{n} {v} (lock: {lock.get(n, 'absent')})" for n, v in installed.items()
                  if n != "byod-agent" and lock.get(n) != v)


def release_venv(work: Path) -> Path:
    """A fresh venv with exactly the locked, hash-checked distributions, then the agent."""
    env_dir = work / "venv"
    if env_dir.exists():
        shutil.rmtree(env_dir)
    venv.create(env_dir, with_pip=True)
    py = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--require-hashes", "--no-deps",
                    "-r", str(LOCK)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    str(ROOT)], check=True)
    return py


def inputs_stamp(name: str, python: Path) -> str:
    """What the PyInstaller output depends on: sources, spec, interpreter, app name."""
    h = hashlib.sha256(f"{name}\n{python.resolve()}\n{os.environ.get('BYOD_SPEC_ENTRY')}".encode())
    paths = [SPEC, ROOT / "pyproject.toml", ROOT / "installer" / "entry.py"]
    for top in ("agent", "ui", "resources/i18n", "resources/icons"):
        paths += sorted(p for p in (ROOT / top).rglob("*") if p.is_file()
                        and "__pycache__" not in p.parts)
    entry = os.environ.get("BYOD_SPEC_ENTRY")
    if entry:
        paths.append(Path(entry))
    for p in paths:
        h.update(p.as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def pyinstaller(name: str, work: Path, python: Path, epoch: int, *, reuse: bool) -> Path:
    app = work / "pyinstaller" / "dist" / name
    stamp_file = work / "pyinstaller" / "stamp"
    stamp = inputs_stamp(name, python)
    if reuse and app.is_dir() and stamp_file.is_file() and stamp_file.read_text() == stamp:
        print(f"build: reusing {app} (inputs unchanged)")
        return app
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch), PYTHONHASHSEED="0")
    env.pop("BYOD_CONFIG_DIR", None)  # the configuration is laid in afterwards, per package
    subprocess.run([str(python), "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level",
                    "WARN", "--workpath", str(work / "pyinstaller" / "work"),
                    "--distpath", str(work / "pyinstaller" / "dist"), str(SPEC)],
                   check=True, env=env, cwd=ROOT)
    stamp_file.write_text(stamp)
    return app


def lay_config(resources: Path, config: Path | None) -> None:
    """Replace the DEMO policy and trust anchors by IT's (a no-op for a DEMO build)."""
    if config is None:
        return
    for sub in ("policy", "trust"):
        shutil.rmtree(resources / sub, ignore_errors=True)
        shutil.copytree(config / sub, resources / sub)
    shutil.copy2(config / buildconfig.MANIFEST, resources / buildconfig.MANIFEST)
    if (config / "managed.json").is_file():  # locked settings (agent/settings/managed.py)
        shutil.copy2(config / "managed.json", resources / "managed.json")
    if (config / "update").is_dir():  # TUF root and release keys (agent/update)
        shutil.rmtree(resources / "update", ignore_errors=True)
        shutil.copytree(config / "update", resources / "update")


def desktop_entry(name: str, exec_line: str, *, autostart: bool, demo: bool) -> str:
    def field(key: str, lang: str) -> str:
        text = i18n.text(f"installer.desktop.{key}", lang)
        if demo and key == "comment":
            text += " — " + i18n.text("installer.demo_suffix", lang)
        return text.replace("\n", " ")

    lines = ["[Desktop Entry]", "Type=Application", f"Name={field('name', 'en')}",
             f"Name[ja]={field('name', 'ja')}", f"Comment={field('comment', 'en')}",
             f"Comment[ja]={field('comment', 'ja')}", f"Exec={exec_line}", f"Icon={name}",
             "Terminal=false", "Categories=Network;Utility;"]
    if autostart:  # started once at login; a per-user entry of the same name overrides it.
        # A conffile outlives `apt-get remove` until purge: TryExec makes a leftover inert.
        lines += ["NoDisplay=true", "X-GNOME-Autostart-enabled=true", f"TryExec={name}"]
    return "\n".join(lines) + "\n"


def runtime_depends() -> list[str]:
    lines = (ROOT / ".ci" / "apt-runtime.txt").read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")] + [FREERDP]


def deb_arch() -> str:
    out = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def stage_deb(app: Path, stage: Path, name: str, version: str, *, config: Path | None,
              demo: bool, package: str | None = None) -> Path:
    if stage.exists():
        shutil.rmtree(stage)
    opt = stage / "opt" / name
    shutil.copytree(app, opt, symlinks=True)
    if name == project()["name"]:
        lay_config(opt / "_internal" / "resources", config)
    (stage / "usr" / "bin").mkdir(parents=True)
    (stage / "usr" / "bin" / name).symlink_to(f"/opt/{name}/{name}")
    _write(stage / "usr/share/applications" / f"{name}.desktop",
           desktop_entry(name, f"{name} tray --open-status", autostart=False, demo=demo), 0o644)
    _write(stage / "etc/xdg/autostart" / f"{name}.desktop",
           desktop_entry(name, f"{name} tray", autostart=True, demo=demo), 0o644)
    icon = stage / "usr/share/icons/hicolor/scalable/apps" / f"{name}.svg"
    icon.parent.mkdir(parents=True)
    shutil.copyfile(ROOT / "resources" / "icons" / "compliant.svg", icon)
    _write(stage / "usr/share/doc" / (package or name) / "copyright",
           f"{package or name} {version}\nBundled third-party components: see the CycloneDX SBOM "
           "published with this release.\n", 0o644)
    # Installed files are read-only: nobody but dpkg changes them (policy updates go to the
    # per-user state directory, never here).
    for p in sorted(opt.rglob("*")):
        if p.is_symlink():
            continue
        if p.is_dir():
            p.chmod(0o755)
        else:
            p.chmod(0o555 if os.access(p, os.X_OK) else 0o444)
    control = stage / "DEBIAN"
    control.mkdir()
    size_kb = sum(p.lstat().st_size for p in stage.rglob("*") if not p.is_dir()) // 1024
    description = (f"Posture-checking tray agent for work from home\n"
                   f" Checks this PC against the city's signed policy and opens the approved\n"
                   f" remote-desktop session.{' DEMO build: not for staff.' if demo else ''}\n")
    package = package or name
    relations = ""
    if package != name or name == project()["name"]:  # the agent: city and DEMO packages
        other = conflicts_with(package, demo=package.endswith(DEMO_SUFFIX))
        relations = f"Conflicts: {other}\nReplaces: {other}\n"
    _write(control / "control",
           f"Package: {package}\nVersion: {version}\nArchitecture: {deb_arch()}\n{relations}"
           f"Maintainer: {os.environ.get('BYOD_MAINTAINER', MAINTAINER)}\n"
           f"Installed-Size: {size_kb}\nSection: net\nPriority: optional\n"
           f"Depends: {', '.join(runtime_depends())}\nDescription: {description}", 0o644)
    # Files under /etc are conffiles (Debian policy 10.7.2): an admin's edit, e.g. Hidden=true to
    # switch autostart off for everyone, survives upgrades.
    _write(control / "conffiles", f"/etc/xdg/autostart/{name}.desktop\n", 0o644)
    for script in ("postinst", "prerm", "postrm"):
        shutil.copyfile(LINUX / script, control / script)
        (control / script).chmod(0o755)
    sums = [f"{hashlib.md5(p.read_bytes()).hexdigest()}  {p.relative_to(stage).as_posix()}"  # noqa: S324 (dpkg's md5sums format)
            for p in sorted(stage.rglob("*"))
            if p.is_file() and not p.is_symlink() and "DEBIAN" not in p.relative_to(stage).parts]
    _write(control / "md5sums", "\n".join(sums) + "\n", 0o644)
    return stage


def set_mtimes(root: Path, epoch: int) -> None:
    for p in [root, *root.rglob("*")]:
        os.utime(p, (epoch, epoch), follow_symlinks=False)


def build_linux(args: argparse.Namespace) -> dict[str, object]:
    name = os.environ.get("BYOD_SPEC_NAME") or project()["name"]
    work = Path(os.environ.get("BYOD_BUILD_DIR") or ROOT / "build" / "installer" / name)
    work.mkdir(parents=True, exist_ok=True)
    # One build at a time per work directory: the benchmark and the tests may build concurrently.
    with (work / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_linux(args, name, work)


def _build_linux(args: argparse.Namespace, name: str, work: Path) -> dict[str, object]:
    meta = project()
    is_agent = not os.environ.get("BYOD_SPEC_ENTRY")
    config = Path(args.config).resolve() if args.config else None
    dist = Path(args.dist).resolve()
    epoch = source_date_epoch()
    demo = is_agent and config is None
    if config is not None:
        buildconfig.check_config(config)  # fails before the slow part
    file_stem = package_name(name, demo=demo)
    build = args.build_number
    if build is None and os.environ.get("BYOD_BUILD_NUMBER"):
        build = int(os.environ["BYOD_BUILD_NUMBER"])
    try:
        check_build_number(build, demo=demo)
    except ValueError as exc:
        raise BuildError(str(exc)) from None
    version = deb_version(meta["version"], build)
    if demo:
        say(msg("buildconfig.demo_build", name=file_stem))
    python = Path(sys.executable)
    if args.release:
        python = release_venv(work)
    elif is_agent:
        for line in lock_drift(python):
            print(f"build: warning: differs from {LOCK.name}: {line}", file=sys.stderr)
    reuse = args.reuse_app or os.environ.get("BYOD_REUSE_APP") == "1"
    app = pyinstaller(name, work, python, epoch, reuse=reuse and not args.release)
    stage = stage_deb(app, work / "deb", name, version, config=config, demo=demo,
                      package=file_stem)
    if is_agent:
        found = buildconfig.demo_findings(stage / "opt" / name / "_internal" / "resources")
        if config is not None and found:
            say(msg("buildconfig.demo_in_payload", items="; ".join(found)), err=True)
            raise BuildError("DEMO files in a customized build")
    set_mtimes(stage, epoch)
    dist.mkdir(parents=True, exist_ok=True)
    deb = dist / f"{file_stem}_{version}_{deb_arch()}.deb"
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(stage), str(deb)],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    result: dict[str, object] = {
        "name": name, "package": file_stem, "version": version, "demo": demo,
        "build_number": build, "app_dir": str(app),
        "app_bytes": sum(p.lstat().st_size for p in app.rglob("*") if not p.is_dir()),
        "deb": str(deb), "deb_bytes": deb.stat().st_size}
    if is_agent:
        cdx = dist / f"{file_stem}_{version}.cdx.json"
        code = ("import sys; from admin import sbom; "
                f"sys.stdout.buffer.write(sbom.sbom_json(epoch={epoch}))")
        data = subprocess.run([str(python), "-c", code], capture_output=True, check=True,
                              cwd=ROOT).stdout
        cdx.write_bytes(data)
        result["sbom"] = str(cdx)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="installer/build", description=__doc__.split("\n")[0])
    parser.add_argument("platform", choices=("linux", "windows", "macos"))
    parser.add_argument("--config", help="directory made by `byod-admin build-config` "
                        "(without it: a DEMO build)")
    parser.add_argument("--dist", default=str(ROOT / "dist"), help="output directory")
    parser.add_argument("--release", action="store_true",
                        help="build in a fresh venv from the hash-pinned lock file")
    parser.add_argument("--build-number", type=int, metavar="N",
                        help="the city's own build number 1..999 (or BYOD_BUILD_NUMBER): "
                        "version 0.1.0+cityN, so every rebuild upgrades the installed one")
    parser.add_argument("--reuse-app", action="store_true",
                        help="reuse the last PyInstaller output when its inputs are unchanged")
    args = parser.parse_args(argv)
    if args.platform != "linux":
        script = {"windows": "installer/windows/build.ps1", "macos": "installer/macos/build.sh"}
        print(f"build: {args.platform} installers are built on {args.platform} with "
              f"{script[args.platform]} (see .github/workflows/release.yml)", file=sys.stderr)
        return 2
    if not sys.platform.startswith("linux"):
        print("build: the .deb is built on Linux", file=sys.stderr)
        return 2
    if not args.release and importlib.util.find_spec("PyInstaller") is None:
        print("build: PyInstaller is missing: run ./setup --build (it installs the 'build' extra)",
              file=sys.stderr)
        return 2
    try:
        result = build_linux(args)
    except PolicyRefused as exc:  # buildconfig refusals: the message says what to fix
        say(exc.message, err=True)
        print(exc.detail, file=sys.stderr)
        return 2
    except (BuildError, subprocess.CalledProcessError, OSError) as exc:
        print(f"build: failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
