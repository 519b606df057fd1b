"""Generate the WiX fragment listing the application's files (wixl has no ``heat``).

    python installer/windows/wxs_files.py SOURCE_DIR > files.wxs

One component per directory, keyed by an HKCU registry value (a per-user install cannot use a
file as key path) and removing its folder on uninstall; ids and component GUIDs derive from the
relative path, so they stay the same from one version to the next (clean major upgrades).
"""

from __future__ import annotations

import hashlib
import sys
import uuid
from pathlib import Path
from xml.sax.saxutils import quoteattr

NS = uuid.UUID("9b1d6f0e-5a4c-4e2b-8f3d-7c6a1e0b2d94")  # fixed namespace for component GUIDs
REG_KEY = r"Software\BYOD Agent\Components"


def _id(prefix: str, rel: str) -> str:
    return prefix + hashlib.sha256(rel.encode("utf-8")).hexdigest()[:24]


def fragment(source: Path, var: str = "SourceDir") -> str:
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           '<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">', "  <Fragment>"]
    comps: list[str] = []

    def walk(directory: Path, depth: int) -> None:
        rel = directory.relative_to(source).as_posix()
        pad = "    " * (depth + 1)
        cid = _id("c", rel)
        comps.append(cid)
        guid = str(uuid.uuid5(NS, rel)).upper()
        out.append(f'{pad}<Component Id="{cid}" Guid="{guid}">')
        out.append(f'{pad}  <RegistryValue Root="HKCU" Key="{REG_KEY}" Name="{cid}" '
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


if __name__ == "__main__":
    sys.stdout.write(fragment(Path(sys.argv[1]).resolve()))
