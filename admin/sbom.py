"""A CycloneDX 1.5 JSON SBOM of what a build bundles: the runtime closure of byod-agent[ui].

Made from importlib.metadata of the build environment rather than with cyclonedx-bom: that tool
lists the whole environment (PyInstaller, pytest, mypy... which are not shipped) unless fed a
requirements file, and it is one more build dependency. Walking the agent's own requirements
gives exactly the distributions PyInstaller collects. Output is deterministic (sorted, timestamp
from SOURCE_DATE_EPOCH, serial number derived from the content) so reproducible builds stay so.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata

ROOT = "byod-agent"
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(dist: metadata.Distribution, extras: set[str]) -> list[tuple[str, set[str]]]:
    """(name, extras) this distribution needs with ``extras``; platform-marked ones that are not
    installed here are not part of this build and are skipped by the caller."""
    out = []
    for req in dist.requires or []:
        spec, _, marker = req.partition(";")
        m = _NAME.match(spec)
        if m is None:
            continue
        wanted_extra = _EXTRA.search(marker)
        if wanted_extra and normalize(wanted_extra.group(1)) not in extras:
            continue
        sub = {normalize(e) for e in (m.group(2) or "").split(",") if e.strip()}
        out.append((m.group(1), sub))
    return out


Closure = tuple[dict[str, metadata.Distribution], dict[str, set[str]]]


def closure(root: str = ROOT, extras: set[str] | None = None) -> Closure:
    """Installed distributions reachable from ``root[extras]`` (by normalized name), and edges."""
    found: dict[str, metadata.Distribution] = {}
    edges: dict[str, set[str]] = {}
    todo = [(root, {normalize(e) for e in (extras or {"ui"})})]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, want = todo.pop()
        key = (normalize(name), frozenset(want))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a marker for another platform or Python; not in this build
        found[normalize(name)] = dist
        for dep, dep_extras in _requirements(dist, want):
            edges.setdefault(normalize(name), set()).add(normalize(dep))
            todo.append((dep, dep_extras))
    return found, {k: {d for d in v if d in found} for k, v in edges.items()}


def _purl(dist: metadata.Distribution) -> str:
    return f"pkg:pypi/{normalize(dist.metadata['Name'])}@{dist.version}"


def _licenses(meta: Mapping[str, str]) -> list[dict[str, object]]:
    expr = meta.get("License-Expression")
    if expr:
        return [{"expression": expr}]
    text = (meta.get("License") or "").strip()
    if text and "\n" not in text and len(text) < 100:
        return [{"license": {"name": text}}]
    return []


def component(dist: metadata.Distribution) -> dict[str, object]:
    meta = dist.metadata
    comp: dict[str, object] = {"type": "library", "bom-ref": _purl(dist),
                               "name": meta["Name"], "version": dist.version, "purl": _purl(dist)}
    lic = _licenses({k: (meta.get_all(k) or [""])[0] for k in ("License", "License-Expression")})
    if lic:
        comp["licenses"] = lic
    return comp


def sbom(*, epoch: int, extras: set[str] | None = None) -> dict[str, object]:
    dists, edges = closure(ROOT, extras)
    root = dists.pop(normalize(ROOT))
    ref = {n: _purl(d) for n, d in dists.items()} | {normalize(ROOT): _purl(root)}
    py = platform.python_version()
    components = [component(d) for _, d in sorted(dists.items())]
    components.append({"type": "framework", "bom-ref": f"pkg:generic/cpython@{py}",
                       "name": "CPython", "version": py,
                       "licenses": [{"license": {"id": "PSF-2.0"}}]})
    deps = [{"ref": ref[n], "dependsOn": sorted(ref[d] for d in edges.get(n, set()))}
            for n in sorted(ref)]
    timestamp = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc: dict[str, object] = {
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "metadata": {"timestamp": timestamp,
                     "tools": {"components": [{"type": "application", "name": "byod-admin",
                                               "version": root.version}]},
                     "component": {"type": "application", "bom-ref": _purl(root),
                                   "name": ROOT, "version": root.version, "purl": _purl(root)}},
        "components": components, "dependencies": deps}
    body = json.dumps(doc, sort_keys=True).encode("utf-8")
    digest = hashlib.sha256(body).hexdigest()
    doc["serialNumber"] = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_OID, digest)}"
    return doc


def sbom_json(*, epoch: int, extras: set[str] | None = None) -> bytes:
    return (json.dumps(sbom(epoch=epoch, extras=extras), indent=2, sort_keys=True) + "\n"
            ).encode("utf-8")
