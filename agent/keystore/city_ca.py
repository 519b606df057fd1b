"""The city's CA, as the installer carries it: a certificate it did not issue is refused at import.

Staff otherwise learn only at connect time that IT's file was the wrong one (the gateway refuses
it). ``resources/trust/city-ca.pem`` holds the CA certificate(s) that issue staff certificates
(the same file the help desk's bundle reader trusts for device signers; docs/certificates.md); a
demo or developer build has none, and then any issuer is accepted.
The issuer is checked by signature, through the intermediates that came with the certificate.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from agent.core.messages import msg
from agent.core.paths import resources_dir
from agent.keystore import pfx_limits
from agent.keystore.errors import KeyState, KeystoreError

CITY_CA_FILE = ("trust", "city-ca.pem")


def city_cas(path: Path | None = None) -> list[x509.Certificate]:
    """The CA certificates that issue staff certificates, as the installer carries them.

    ``resources/trust/city-ca.pem`` (it may hold several). None in a demo or developer build:
    then any issuer is accepted (the gateway still decides at connect time). A file that is
    there but cannot be read refuses every import (KeystoreError) rather than checking nothing.
    """
    path = path or resources_dir().joinpath(*CITY_CA_FILE)
    try:
        with path.open("rb") as fh:
            return x509.load_pem_x509_certificates(fh.read(1024 * 1024))
    except FileNotFoundError:
        return []
    except (OSError, ValueError):  # there but unusable: fail closed, never skip the check
        raise KeystoreError(KeyState.INVALID_INPUT,
                            msg("cert.error.city_ca_unreadable", path=str(path))) from None


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def issued_by_city(chain: Sequence[x509.Certificate], cas: Sequence[x509.Certificate]) -> bool:
    """Whether the leaf (``chain[0]``) leads, through the chain's intermediates, to a city CA."""
    current, pool = chain[0], list(chain[1:])
    for _ in range(6):  # leaf, a few intermediates, root: bounded
        if any(_issued_by(current, ca) for ca in cas):
            return True
        parent = next((c for c in pool if _issued_by(current, c)), None)
        if parent is None:
            return False
        pool.remove(parent)
        current = parent
    return False


def check_issuer(chain: Sequence[x509.Certificate],
                 cas: Sequence[x509.Certificate] | None = None) -> None:
    """Refuse, in plain words, a certificate that the city's CA did not issue."""
    cas = city_cas() if cas is None else cas
    if not cas or not chain or issued_by_city(chain, cas):
        return
    raise KeystoreError(KeyState.INVALID_INPUT, msg(
        "cert.error.wrong_issuer", issuer=chain[0].issuer.rfc4514_string()[:200],
        expected=", ".join(ca.subject.rfc4514_string()[:120] for ca in cas[:3])))


def p12_chain(data: bytes, password: bytes | None) -> list[x509.Certificate]:
    bundle = pfx_limits.load(data, password)  # KDF caps before OpenSSL runs (issue 18)
    if bundle.cert is None:
        raise KeystoreError(KeyState.INVALID_INPUT, msg("cert.error.p12_no_cert"))
    return [bundle.cert.certificate, *(c.certificate for c in bundle.additional_certs)]
