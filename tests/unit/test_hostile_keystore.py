"""Issue 18 class 5 (KDF caps) and class 8 (hostile EST answers, temp-file names) for the keystore.

A PKCS#12 names its own iteration counts; before issue 18 ``cert import`` handed any file to
OpenSSL, so a MAC iteration count of 2**31 held the CPU for minutes. The files here are real
PKCS#12 made by ``cryptography`` (testkit.pki) with their counts rewritten in the DER, as a hostile
sender would.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from agent.keystore import city_ca, files, pfx_limits
from agent.keystore.errors import KeystoreError
from agent.keystore.store import Keystore
from testkit.pki import CA, ec_key, issue, p12

USER = issue(CA, "Yamada Taro")


def _tlv(data: bytes, pos: int = 0) -> tuple[int, int, int]:
    """(header length, content length, end) of the DER element at ``pos``."""
    length = data[pos + 1]
    if length & 0x80:
        n = length & 0x7F
        return 2 + n, int.from_bytes(data[pos + 2:pos + 2 + n], "big"), \
            pos + 2 + n + int.from_bytes(data[pos + 2:pos + 2 + n], "big")
    return 2, length, pos + 2 + length


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _children(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        _, _, end = _tlv(data, pos)
        out.append(data[pos:end])
        pos = end
    return out


def with_mac_iterations(pfx: bytes, iterations: int) -> bytes:
    head, _, _ = _tlv(pfx)
    version, auth_safe, mac = _children(pfx[head:])
    mhead, _, _ = _tlv(mac)
    digest, salt, _ = _children(mac[mhead:])
    count = iterations.to_bytes((iterations.bit_length() + 8) // 8, "big")
    return _der(0x30, version + auth_safe + _der(0x30, digest + salt + _der(0x02, count)))


def test_normal_files_pass_the_caps() -> None:
    for legacy in (False, True):
        data = p12(USER, b"pw", legacy=legacy, extra=(CA.cert,))
        assert 0 < pfx_limits.check(data) <= pfx_limits.MAX_TOTAL_ITERATIONS
        assert pfx_limits.load(data, b"pw").cert is not None


@pytest.mark.parametrize("iterations", [2**31 - 1, 2_000_001, 2**64])
def test_mac_iteration_count_over_the_cap_is_refused_at_once(iterations: int) -> None:
    data = with_mac_iterations(p12(USER, b"pw"), iterations)
    start = time.monotonic()
    with pytest.raises(KeystoreError) as caught:
        pfx_limits.load(data, b"pw")
    assert caught.value.message.key == "cert.error.p12_kdf_cap"
    assert time.monotonic() - start < 0.5  # before issue 18: minutes of PBKDF
    with pytest.raises(KeystoreError):  # the first step of `cert import`
        city_ca.p12_chain(data, b"pw")
    with pytest.raises(KeystoreError):  # and the import itself
        Keystore(Path("/nonexistent"), backend=None).import_pkcs12(data, b"pw")


def test_pbkdf2_iteration_count_over_the_cap_is_refused() -> None:
    enc = (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(65536)
           .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
           .hmac_hash(hashes.SHA256()).build(b"pw"))
    data = pkcs12.serialize_key_and_certificates(b"u", USER.key, USER.cert, None, enc)
    assert data.count(b"\x02\x03\x01\x00\x00") == 2  # both PBKDF2 counts, 65536
    hostile = data.replace(b"\x02\x03\x01\x00\x00", b"\x02\x03\x7f\xff\xff")  # 8,388,607
    with pytest.raises(KeystoreError) as caught:
        pfx_limits.load(hostile, b"pw")
    assert caught.value.message.key == "cert.error.p12_kdf_cap"


@pytest.mark.parametrize("data", [
    b"", b"\x30", b"\x30\x84\xff\xff\xff\xff", b"\x30\x80" * 5000, b"\x04\x02ab",
    _der(0x30, b"\x02\x01\x03" + _der(0x30, b"\x06\x00") + _der(0x30, b"")),
])
def test_garbage_is_unreadable_not_a_crash(data: bytes) -> None:
    with pytest.raises(KeystoreError) as caught:
        pfx_limits.load(data, b"pw")
    assert caught.value.message.key in ("cert.error.p12_unreadable", "cert.error.p12_kdf_cap")


def test_est_answers_for_another_key_or_a_ca_are_refused() -> None:
    """What a hostile EST server could send back: nothing is stored for any of these."""
    store = Keystore(Path("/nonexistent"), backend=None)
    ours = ec_key()
    for issued in ([issue(CA, "Yamada Taro").cert],  # another key
                   [CA.cert],  # the CA itself as the leaf
                   [issue(CA, "Sub CA", key=ours, is_ca=True).cert]):  # a CA cert for our key
        with pytest.raises(KeystoreError) as caught:
            store.adopt(ours, issued)
        assert caught.value.message.key in ("cert.error.key_mismatch",
                                             "cert.error.ca_certificate")


def test_staged_temp_names_are_not_predictable(tmp_path: Path) -> None:
    """A name planted in advance (the old ``.cert.pem.<pid>.tmp``) neither blocks nor is used."""
    os.symlink("/etc/passwd", tmp_path / f".cert.pem.{os.getpid()}.tmp")
    names = set()
    for _ in range(2):
        with files.staged(tmp_path, {"cert.pem": b"x"}) as temps:
            names.add(temps["cert.pem"].name)
            assert not temps["cert.pem"].is_symlink()
    assert len(names) == 2
