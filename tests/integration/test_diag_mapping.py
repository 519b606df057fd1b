"""The pseudonym mapping under a real Secret Service: encrypted on disk, the user can look it up,
gone after the retention period; and the whole path through ``diag export`` / ``diag mapping``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.diagnostics.mapping import IDENTITY_NAME, SERVICE, MappingError, MappingStore
from tests.conftest import REPO
from tests.integration import secret_service

pytestmark = pytest.mark.real
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
ENTRIES = {"user-1": "yamada.taro", "host-1": "YAMADA-PC", "ip-1": "192.168.10.23"}


def test_stored_encrypted_and_revealed(ss: secret_service.SecretService, backend: object) -> None:
    store = MappingStore(ss.home / "maps", backend=backend)
    path = store.store("K7QM-4TXD", NOW, ENTRIES)
    raw = path.read_bytes()
    assert raw.startswith(b"age-encryption.org/v1")
    assert not any(v.encode() in raw for v in ENTRIES.values())
    assert (path.stat().st_mode & 0o077) == 0 and (path.parent.stat().st_mode & 0o077) == 0
    identity = backend.get_password(SERVICE, IDENTITY_NAME)  # type: ignore[attr-defined]
    assert identity and identity.startswith("AGE-SECRET-KEY-")
    everything = b"".join(p.read_bytes() for p in ss.home.rglob("*") if p.is_file())
    assert identity.encode() not in everything  # the identity lives only in the keyring
    found = store.reveal("k7qm4txd", NOW + timedelta(days=1))
    assert found.entries == ENTRIES and found.bundle_id == "K7QM4TXD"
    assert found.expires_at == NOW + timedelta(days=30)


def test_after_the_retention_period_it_is_gone(ss: secret_service.SecretService,
                                               backend: object) -> None:
    store = MappingStore(ss.home / "maps", backend=backend)
    path = store.store("K7QM-4TXD", NOW, ENTRIES)
    with pytest.raises(MappingError) as err:
        store.reveal("K7QM-4TXD", NOW + timedelta(days=30, seconds=1))
    assert err.value.key == "diag.mapping.not_found" and not path.exists()


def test_a_replaced_keyring_identity_cannot_open_old_files(ss: secret_service.SecretService,
                                                            backend: object) -> None:
    store = MappingStore(ss.home / "maps", backend=backend)
    store.store("K7QM-4TXD", NOW, ENTRIES)
    backend.delete_password(SERVICE, IDENTITY_NAME)  # type: ignore[attr-defined]
    with pytest.raises(MappingError) as err:
        store.reveal("K7QM-4TXD", NOW)
    assert err.value.key == "diag.mapping.no_identity"
    store.store("AAAA-0000", NOW, {"user-1": "x"})  # a new identity is made
    with pytest.raises(MappingError) as err:
        store.reveal("K7QM-4TXD", NOW)
    assert err.value.key == "diag.mapping.unreadable"


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=180, check=False, stdin=subprocess.DEVNULL)


def test_export_keeps_the_mapping_and_the_user_reveals_it(
        ss: secret_service.SecretService, tmp_path: Path) -> None:
    env = {**os.environ, **ss.env(), "USER": "yamada.taro", "LOGNAME": "yamada.taro",
           "BYOD_AGENT_LANG": "en"}
    log_dir = ss.home / ".local" / "state" / "byod-agent" / "log"
    log_dir.mkdir(parents=True)
    (log_dir / "agent.log").write_text("ERROR yamada.taro could not reach 198.51.100.20\n",
                                       encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    exp = _cli(env, "diag", "export", "--yes", "--out", str(out))
    assert exp.returncode == 0, exp.stderr
    assert "placeholder list was not kept" not in exp.stderr
    [bundle] = list(out.iterdir())
    bundle_id = exp.stdout.split("Bundle ID: ")[1].split()[0]
    log = zipfile.ZipFile(io.BytesIO(bundle.read_bytes())).read("logs/agent.log").decode()
    assert "198.51.100.20" not in log and "yamada" not in log
    ip = next(w for w in log.split() if w.startswith("ip-"))
    maps = list((ss.home / ".local" / "share" / "byod-agent" / "diag-mappings").iterdir())
    assert len(maps) == 1 and b"198.51.100.20" not in maps[0].read_bytes()

    shown = _cli(env, "diag", "mapping", bundle_id, ip, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["entries"] == {ip: "198.51.100.20"}
    text = _cli(env, "diag", "reveal", bundle_id)
    assert text.returncode == 0 and "yamada.taro" in text.stdout
    missing = _cli(env, "diag", "mapping", "ZZZZ-ZZZZ")
    assert missing.returncode == 2 and "ZZZZ-ZZZZ" in missing.stderr
