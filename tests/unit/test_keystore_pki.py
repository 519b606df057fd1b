"""A small test PKI made with `cryptography`, and the pure certificate rules tested on it.

The builders live in testkit/pki.py.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID

from agent.keystore import KeyState, KeystoreError, certs
from testkit.pki import CA, DAY, NOW, Key, Pair, ec_key, issue

# -- the pure rules ---------------------------------------------------------------------------


def test_certificates_load_from_pem_der_and_pkcs7() -> None:
    leaf = issue(CA, "Yamada Taro")
    for blob in (leaf.cert_pem + CA.cert_pem,
                 leaf.cert.public_bytes(serialization.Encoding.DER),
                 pkcs7.serialize_certificates([leaf.cert, CA.cert], serialization.Encoding.PEM),
                 pkcs7.serialize_certificates([leaf.cert, CA.cert], serialization.Encoding.DER)):
        assert certs.load_certificates(blob)[0].subject == leaf.cert.subject
    with pytest.raises(KeystoreError) as err:
        certs.load_certificates(b"not a certificate")
    assert err.value.state is KeyState.INVALID_INPUT


@pytest.mark.parametrize(("pair", "key"), [
    (issue(CA, "no eku", usages=None), "cert.error.no_client_auth"),
    (issue(CA, "server only", usages=(ExtendedKeyUsageOID.SERVER_AUTH,)),
     "cert.error.no_client_auth"),
    (issue(CA, "expired", not_before=NOW - 400 * DAY, not_after=NOW - DAY), "cert.error.expired"),
    (issue(CA, "future", not_before=NOW + DAY), "cert.error.not_yet_valid"),
    (issue(CA, "a CA", is_ca=True), "cert.error.ca_certificate"),
])
def test_client_certificate_rules(pair: Pair, key: str) -> None:
    with pytest.raises(KeystoreError) as err:
        certs.check_client_certificate(pair.cert, NOW)
    assert err.value.message.key == key


@pytest.mark.parametrize(("key", "ok"), [
    (ec_key(ec.SECP256R1()), True), (ec_key(ec.SECP384R1()), True),
    (ec_key(ec.SECP521R1()), False), (ec_key(ec.SECP256K1()), False),
    (rsa.generate_private_key(65537, 2048), True),
    (rsa.generate_private_key(65537, 1024), False),  # noqa: S505
])
def test_key_strength(key: Key, ok: bool) -> None:
    if ok:
        assert certs.check_key_strength(key) is key
    else:
        with pytest.raises(KeystoreError):
            certs.check_key_strength(key)


def test_chain_order_and_mismatch() -> None:
    leaf = issue(CA, "Yamada Taro")
    assert certs.order_chain(leaf.key, [CA.cert, leaf.cert]) == [leaf.cert, CA.cert]
    with pytest.raises(KeystoreError) as err:
        certs.order_chain(ec_key(), [leaf.cert])
    assert err.value.state is KeyState.KEY_MISMATCH


@pytest.mark.parametrize(("left", "threshold"), [
    (dt.timedelta(days=31), None), (dt.timedelta(days=30), 30), (dt.timedelta(days=8), 30),
    (dt.timedelta(days=7), 7), (dt.timedelta(days=2), 7), (dt.timedelta(hours=23), 1),
    (dt.timedelta(0), 0), (-DAY, 0),
])
def test_expiry_warning_thresholds(left: dt.timedelta, threshold: int | None) -> None:
    warning = certs.expiry_warning(NOW + left, NOW)
    assert (warning.threshold if warning else None) == threshold


def test_renewal_at_two_thirds_of_the_lifetime() -> None:
    start, end = NOW, NOW + 90 * DAY
    assert not certs.renewal_due(start, end, NOW + 59 * DAY)
    assert certs.renewal_due(start, end, NOW + 60 * DAY)
