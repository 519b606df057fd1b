"""Generate the WiX fragment listing the application's files (wixl has no ``heat``).

    python installer/windows/wxs_files.py --edition city|demo SOURCE_DIR > files.wxs

One component per directory, keyed by an HKCU registry value (a per-user install cannot use a
file as key path) and removing its folder on uninstall; ids and component GUIDs derive from the
relative path, so they stay the same from one version or build to the next (clean major
upgrades). The DEMO and city MSIs are two products (byod-agent.wxs) whose payloads differ (trust
anchors, policy), so each edition has its own GUID namespace and registry key: the same
directory never means two component contents under one GUID.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import uuid
from pathlib import Path
from xml.sax.saxutils import quoteattr

# Fixed namespaces for component GUIDs and the key-path registry keys, one per edition; the
# city's are the ones every earlier MSI used, so its upgrades stay clean.
NAMESPACES = {"city": uuid.UUID("9b1d6f0e-5a4c-4e2b-8f3d-7c6a1e0b2d94"),
              "demo": uuid.UUID("4f0c8e2a-7d1b-4a6e-9c35-b2e8d0f1a7c6")}
REG_KEYS = {"city": r"Software\BYOD Agent\Components",
            "demo": r"Software\BYOD Agent\Components (DEMO)"}


def _id(prefix: str, rel: str) -> str:
    return prefix + hashlib.sha256(rel.encode("utf-8")).hexdigest()[:24]


def fragment(source: Path, edition: str, var: str = "SourceDir") -> str:
    ns, reg_key = NAMESPACES[edition], REG_KEYS[edition]
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           '<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">', "  <Fragment>"]
    comps: list[str] = []

    def walk(directory: Path, depth: int) -> None:
        rel = directory.relative_to(source).as_posix()
        pad = "    " * (depth + 1)
        cid = _id("c", rel)
        comps.append(cid)
        guid = str(uuid.uuid5(ns, rel)).upper()
        out.append(f'{pad}<Component Id="{cid}" Guid="{guid}">')
        out.append(f'{pad}  <RegistryValue Root="HKCU" Key="{reg_key}" Name="{cid}" '
                   'Type="integer" Value="1" KeyPath="yes" />')
        out.append(f'{pad}  <RemoveFolder Id="{_id("r", rel)}" On="uninstall" />')
        for f in sorted(p for p in directory.iterdir() if p.is_file()):
            frel = f.relative_to(source).as_posix()
            src = quoteattr(f"$(var.{var})/{frel}")
            out.append(f'{pad}  <File Id="{_id("f", frel)}" Name={quoteattr(f.name)} '
                       f'Source={src} />')
        out.append(f"{pad}</Component>")
        for d in sorted(p for p in directory.iterdir() if p.is_dir()):
            drel = d.relative_to(source).as_posix()
            out.append(f'{pad}<Directory Id="{_id("d", drel)}" Name={quoteattr(d.name)}>')
            walk(d, depth + 1)
            out.append(f"{pad}</Directory>")

    out.append('    <DirectoryRef Id="INSTALLDIR">')
    walk(source, 1)
    out.append("    </DirectoryRef>")
    out.append('    <ComponentGroup Id="AppFiles">')
    out += [f'      <ComponentRef Id="{c}" />' for c in comps]
    out += ["    </ComponentGroup>", "  </Fragment>", "</Wix>", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wxs_files.py", description=__doc__.split("\n")[0])
    parser.add_argument("--edition", required=True, choices=sorted(NAMESPACES))
    parser.add_argument("source", help="the PyInstaller onedir")
    args = parser.parse_args(argv)
    sys.stdout.write(fragment(Path(args.source).resolve(), args.edition))
    return 0


if __name__ == "__main__":
    sys.exit(main())
