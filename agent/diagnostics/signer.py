"""Sign a bundle's manifest with the device key from the keystore, when one is enrolled."""

from __future__ import annotations

import logging

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from agent.keystore.errors import KeystoreError
from agent.keystore.store import Identity, Keystore

log = logging.getLogger("agent.diagnostics")


class DeviceSigner:
    """ECDSA P-256/P-384 with SHA-256, or RSA PKCS#1 v1.5: what the reader verifies."""

    def __init__(self, identity: Identity) -> None:
        self._identity = identity

    def sign(self, data: bytes) -> bytes:
        key = serialization.load_pem_private_key(self._identity.key_path.read_bytes(),
                                                 password=self._identity.passphrase)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(hashes.SHA256()))
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        raise ValueError("unsupported device key type")  # the keystore imports no other kind

    def certificate_pem(self) -> bytes:
        return self._identity.cert_path.read_bytes()


def device_signer(keystore: Keystore | None = None) -> DeviceSigner | None:
    """The signer, or None (unsigned bundle) when no usable certificate is enrolled."""
    try:
        store = keystore or Keystore.default()
        return DeviceSigner(store.load_identity())
    except (KeystoreError, OSError, ValueError) as exc:
        log.info("diagnostic bundle will be unsigned: %s", exc)
        return None
