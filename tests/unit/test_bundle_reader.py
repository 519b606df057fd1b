"""The help desk's reader against a corpus of hostile bundles: refused, nothing written, bounded."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
from pathlib import Path

import pyrage
import pytest

from agent.core.messages import msg
from agent.diagnostics import bundle, render
from agent.diagnostics.reader import HostileBundle, extract, open_bundle
from agent.diagnostics.redact import Redactor
from agent.posture.model import CheckResult, HostInfo, Report, Status


def _report() -> Report:
    checks = (
        CheckResult("disk_encryption", Status.FAIL, msg("os_supported.not_listed", name="x"),
                    {"device": "/dev/vda"}, "os_supported.upgrade", 3),
        CheckResult("antivirus", Status.PASS, msg("os_supported.supported_open", name="y"), {},
                    None, 1),
    )
    return Report("2026-11-27T03:00:00Z", HostInfo("linux", "Linux-6", "pc01", "x86_64"), checks)


def _good(tmp_path: Path, logs: dict[str, str] | None = None) -> bytes:
    files = []
    for name, text in (logs or {}).items():
        p = tmp_path / name
        p.write_text(text, encoding="utf-8")
        files.append(p)
    preview = bundle.prepare(_report(), Redactor(host_names=["pc01"]), log_files=files,
                             facts=lambda: {"python": "3.11"})
    return bundle.build_zip(preview)


def _zip(entries: list[tuple[str, bytes]], *, mode: int = 0o100644) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def _with_manifest(entries: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    import hashlib

    man = {"schema": 1, "bundle_id": "TEST-0000", "files": [
        {"name": n, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in entries]}
    return [*entries, ("manifest.json", json.dumps(man).encode())]


def test_round_trip_unsigned(tmp_path: Path) -> None:
    b = open_bundle(_good(tmp_path, {"agent.log": "ok\nERROR connect failed\n"}))
    assert b.verification.hashes_ok and not b.verification.signed
    assert not b.verification.verified  # unsigned is never "verified"
    d = render.digest(b)
    assert d["checks"][0]["id"] == "disk_encryption"
    assert any("connect failed" in line for line in d["log_excerpts"])
    assert "pc01" not in json.dumps(d)


def test_modified_file_is_named(tmp_path: Path) -> None:
    good = zipfile.ZipFile(io.BytesIO(_good(tmp_path)))
    entries = [(i.filename, good.read(i)) for i in good.infolist()]
    entries = [(n, d.replace(b"fail", b"pass") if n == "posture.json" else d) for n, d in entries]
    b = open_bundle(_zip(entries))
    assert not b.verification.hashes_ok
    assert any(p.startswith("posture.json") for p in b.verification.problems)


def test_added_and_missing_files_are_named(tmp_path: Path) -> None:
    good = zipfile.ZipFile(io.BytesIO(_good(tmp_path)))
    entries = [(i.filename, good.read(i)) for i in good.infolist() if i.filename != "system.json"]
    b = open_bundle(_zip([*entries, ("extra.txt", b"hi")]))
    problems = " ".join(b.verification.problems)
    assert "system.json" in problems and "extra.txt" in problems


HOSTILE = {
    "traversal": [("../../etc/evil", b"x")],
    "absolute": [("/etc/evil", b"x")],
    "drive_letter": [("C:/Windows/evil", b"x")],
    "backslash": [("logs\\..\\..\\evil", b"x")],
    "hidden_dotdot": [("logs/../../evil", b"x")],
    "deep_dir": [("a/b/c/d", b"x")],
    "duplicate": [("summary.txt", b"a"), ("summary.txt", b"b")],
    "no_manifest": [("summary.txt", b"hello")],
    "bad_utf8_manifest": [("manifest.json", b"\xff\xfe{\"files\": []}")],
    "deep_json": [("manifest.json", b"[" * 5000 + b"]" * 5000)],
    "manifest_not_object": [("manifest.json", b"[1, 2, 3]")],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_corpus_is_refused(case: str, tmp_path: Path) -> None:
    with pytest.raises(HostileBundle):
        open_bundle(_zip(HOSTILE[case]))
    assert list(tmp_path.iterdir()) == []  # nothing was written anywhere we look


def test_symlink_member_is_refused() -> None:
    with pytest.raises(HostileBundle, match="regular file"):
        open_bundle(_zip(_with_manifest([("link", b"/etc/passwd")]), mode=0o120777))


def test_not_a_zip_is_refused() -> None:
    for data in (b"", b"PK\x03\x04garbage", b"hello world" * 100):
        with pytest.raises(HostileBundle):
            open_bundle(data)


def test_zip_bomb_is_refused_with_bounded_memory() -> None:
    bomb = _zip(_with_manifest([("logs/agent.log", b"\0" * (200 * 1024 * 1024))]))
    assert len(bomb) < 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(HostileBundle, match=r"ratio|over"):
            open_bundle(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024


def test_lying_size_header_is_refused() -> None:
    data = bytearray(_zip(_with_manifest([("summary.txt", b"a" * 1000)])))
    # Patch the central directory's uncompressed size of the first member to claim 10 bytes.
    cd = data.rfind(b"PK\x01\x02", 0, data.rfind(b"PK\x01\x02"))
    data[cd + 24:cd + 28] = (10).to_bytes(4, "little")
    with pytest.raises(HostileBundle):
        open_bundle(bytes(data))


def test_script_in_fields_is_escaped_in_html(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    entries = _with_manifest([("posture.json", json.dumps({"checks": [{
        "id": evil, "status": "fail", "summary": {"ja": evil, "en": evil},
        "evidence": {evil: evil}}]}).encode())])
    page = render.as_html(render.digest(open_bundle(_zip(entries))))
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_extract_stays_inside_target(tmp_path: Path) -> None:
    b = open_bundle(_good(tmp_path))
    out = extract(b, tmp_path / "out")
    assert all((tmp_path / "out") in p.parents for p in out)


def test_encrypted_round_trip_and_wrong_key(tmp_path: Path) -> None:
    helpdesk = pyrage.x25519.Identity.generate()
    other = pyrage.x25519.Identity.generate()
    sealed = bundle.encrypt_for(_good(tmp_path), [str(helpdesk.to_public())])
    assert sealed.startswith(b"age-encryption.org/v1")
    assert open_bundle(sealed, str(helpdesk)).verification.hashes_ok
    with pytest.raises(HostileBundle, match="decrypt"):
        open_bundle(sealed, str(other))
    with pytest.raises(HostileBundle, match="--key"):
        open_bundle(sealed)


def test_log_budget_goes_to_the_newest_files_first(tmp_path: Path) -> None:
    """Rotated logs: agent.log.10 sorts before agent.log.2 by name; the newest must win."""
    import os

    line = '{"message": "x"}\n' * 4000  # 68 kB each
    paths = {}
    for age, name in ((3, "agent.log.10"), (2, "agent.log.2"), (1, "agent.log")):
        p = tmp_path / name
        p.write_text(line, encoding="utf-8")
        os.utime(p, (1_700_000_000 - age * 1000, 1_700_000_000 - age * 1000))
        paths[name] = p
    preview = bundle.prepare(_report(), Redactor(), log_files=paths.values(),
                             facts=lambda: {}, cap_bytes=2 * 140_000)
    full = len(line.encode())
    assert len(preview.files["logs/agent.log"]) == len(preview.files["logs/agent.log.2"]) == full
    assert len(preview.files.get("logs/agent.log.10", b"")) < full  # the oldest gets what is left
