"""The pseudonym mapping's housekeeping: IDs, reversal, retention purge, refused keyrings."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.diagnostics.mapping import MappingError, MappingStore, normalize_id, reverse
from agent.keystore.errors import KeyState, KeystoreError

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def test_bundle_ids_as_people_type_them() -> None:
    assert normalize_id("k7qm-4txd") == "K7QM4TXD" == normalize_id(" K7QM4TXD ")
    for bad in ("", "K7QM-4TX", "../../etc", "K7QM-4TXI", "K7QM_4TXD", "K7QM-4TXD-1"):
        with pytest.raises(MappingError):
            normalize_id(bad)


def test_reverse_gives_pseudonym_to_original() -> None:
    assert reverse({"user:yamada.taro": "user-1", "ip:192.168.1.5": "ip-1",
                    "ip:fe80::1": "ip-2"}) == {"user-1": "yamada.taro", "ip-1": "192.168.1.5",
                                               "ip-2": "fe80::1"}


def _touch(path: Path, mtime: datetime | None = None) -> Path:
    path.write_bytes(b"age-encryption.org/v1\n")
    if mtime is not None:
        os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path


def test_purge_deletes_what_is_older_than_the_retention(tmp_path: Path) -> None:
    store = MappingStore(tmp_path, backend=object())
    old = _touch(tmp_path / "K7QM4TXD-20261027T025959Z.age")  # 30 days and 1 s
    young = _touch(tmp_path / "AAAA0000-20261028T030000Z.age")
    stray_old = _touch(tmp_path / ".AAAA0000-x.age.tmp", NOW - timedelta(days=40))
    stray_new = _touch(tmp_path / "notes.txt", NOW - timedelta(days=1))
    removed = store.purge(NOW)
    assert sorted(removed) == sorted([old, stray_old])
    assert young.exists() and stray_new.exists()


def test_purge_trusts_the_name_not_a_touched_mtime(tmp_path: Path) -> None:
    old = _touch(tmp_path / "K7QM4TXD-20260101T000000Z.age", NOW)  # mtime "fresh"
    MappingStore(tmp_path, backend=object()).purge(NOW)
    assert not old.exists()


def test_purge_of_a_missing_directory_is_quiet(tmp_path: Path) -> None:
    assert MappingStore(tmp_path / "none", backend=object()).purge(NOW) == []


class PlaintextKeyring:  # what keyrings.alt offers when no Secret Service is reachable
    def get_password(self, service: str, name: str) -> str | None:
        return None

    def set_password(self, service: str, name: str, value: str) -> None:
        raise AssertionError("a plaintext keyring must never receive the identity")


def test_a_plaintext_keyring_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    store = MappingStore(tmp_path / "m", backend=PlaintextKeyring())
    with pytest.raises(KeystoreError) as err:
        store.store("K7QM-4TXD", NOW, {"user-1": "yamada.taro"})
    assert err.value.state is KeyState.BACKEND_REFUSED
    assert not (tmp_path / "m").exists()


def test_reveal_of_an_unknown_bundle_says_so(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as err:
        MappingStore(tmp_path, backend=PlaintextKeyring()).reveal("K7QM-4TXD", NOW)
    assert err.value.key == "diag.mapping.not_found"
