"""TPM 2.0 device key on Linux, through tpm2-pytss (the ``tpm`` extra) and the TPM resource manager.

The key is made inside the TPM under the owner hierarchy's standard ECC storage key (the template
tpm2-openssl and tpm2-tss-engine use), with fixedTPM|fixedParent|sensitiveDataOrigin: the TPM
refuses to duplicate it, so it cannot be exported, and the "TSS2 PRIVATE KEY" file on disk is a
blob wrapped by that storage key: on another PC (another TPM) it loads nowhere. No password: the
PC itself is the factor, and staff get no prompt.

TLS client authentication uses the same file through the tpm2-openssl provider, loaded into the
OpenSSL that Python's ``ssl`` links (``enable_openssl_provider``; docs/certificates.md explains
the measurement behind that choice). Attestation evidence: TPM2_Certify of the device key by an
attestation key (a restricted ECC signing primary in the endorsement hierarchy, derived again on
every call, never stored) and a TPM2_Quote over the boot PCRs, both over the verifier's nonce.

Needs a resource manager: the kernel's ``/dev/tpmrm0`` on real PCs (the default TCTI), or
``tpm2-abrmd`` in the tests (``BYOD_TPM_TCTI``). Without one, a TPM has only ~3 object slots and
OpenSSL's use of the TPM fails with ``0x902 out of memory for object contexts``.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import re
import ssl
import threading
from collections.abc import Iterator
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from agent.core.messages import msg
from agent.keystore.errors import KeyState, KeystoreError
from agent.keystore.providers import Protection

NAME = "tpm2"
PROTECTION = Protection.HARDWARE
TCTI_ENV = "BYOD_TPM_TCTI"
BOOT_PCRS = (0, 7)  # firmware code, Secure Boot policy/state (TCG PC Client PFP)
_TCTI_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_:=,./-]{0,199}")
_LOCK = threading.Lock()  # one TPM command stream per process
_STATE = {"provider_loaded": False}


def _fail(detail: str) -> KeystoreError:
    return KeystoreError(KeyState.KEY_CORRUPT, msg("cert.error.tpm", detail=detail[:120]))


def tcti() -> str | None:
    """The TCTI to use: ``BYOD_TPM_TCTI`` (validated), else the TSS default (/dev/tpmrm0)."""
    value = os.environ.get(TCTI_ENV, "").strip()
    if not value:
        return None
    if not _TCTI_RE.fullmatch(value):
        raise _fail(f"{TCTI_ENV} is not a TCTI configuration string")
    return value


def available() -> bool:
    """tpm2-pytss importable (the ``tpm`` extra). Says nothing about a TPM being present."""
    try:
        import tpm2_pytss  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def usable() -> bool:
    """A TPM to enroll with: tpm2-pytss installed and either ``BYOD_TPM_TCTI`` set or the
    kernel's resource manager present (no TSS call, so no TSS error lines on PCs without one).
    A TPM that then fails to answer makes enrollment fail with the reason, never fall back."""
    return available() and (bool(os.environ.get(TCTI_ENV, "").strip())
                            or os.path.exists("/dev/tpmrm0"))


@contextlib.contextmanager
def _esapi() -> Iterator[Any]:
    try:
        from tpm2_pytss import ESAPI, TSS2_Exception  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415
    except ImportError:
        raise _fail("tpm2-pytss is not installed") from None
    with _LOCK:
        try:
            ctx = ESAPI(tcti())
        except (TSS2_Exception, RuntimeError, OSError) as exc:
            raise _fail(f"no TPM: {exc}") from None
        try:
            yield ctx
        except TSS2_Exception as exc:
            raise _fail(str(exc)) from None
        finally:
            ctx.close()


def _key_template() -> Any:
    from tpm2_pytss import (  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415
        TPM2_ALG,
        TPM2_ECC,
        TPMA_OBJECT,
        TPMS_ECC_PARMS,
        TPMT_ECC_SCHEME,
        TPMT_KDF_SCHEME,
        TPMT_PUBLIC,
        TPMT_SYM_DEF_OBJECT,
        TPMU_PUBLIC_PARMS,
    )
    return TPMT_PUBLIC(
        type=TPM2_ALG.ECC, nameAlg=TPM2_ALG.SHA256,
        objectAttributes=(TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT
                          | TPMA_OBJECT.SENSITIVEDATAORIGIN | TPMA_OBJECT.USERWITHAUTH
                          | TPMA_OBJECT.SIGN_ENCRYPT | TPMA_OBJECT.NODA),
        authPolicy=b"",
        parameters=TPMU_PUBLIC_PARMS(eccDetail=TPMS_ECC_PARMS(
            symmetric=TPMT_SYM_DEF_OBJECT(algorithm=TPM2_ALG.NULL),
            scheme=TPMT_ECC_SCHEME(scheme=TPM2_ALG.NULL),  # tpm2-openssl picks ECDSA per call
            curveID=TPM2_ECC.NIST_P256, kdf=TPMT_KDF_SCHEME(scheme=TPM2_ALG.NULL))))


def _ak_template() -> Any:
    from tpm2_pytss import (  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415
        TPM2_ALG,
        TPM2_ECC,
        TPMA_OBJECT,
        TPMS_ECC_PARMS,
        TPMT_ECC_SCHEME,
        TPMT_KDF_SCHEME,
        TPMT_PUBLIC,
        TPMT_SYM_DEF_OBJECT,
        TPMU_ASYM_SCHEME,
        TPMU_PUBLIC_PARMS,
    )
    from tpm2_pytss.types import TPMS_SCHEME_HASH  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415
    scheme = TPMT_ECC_SCHEME(scheme=TPM2_ALG.ECDSA, details=TPMU_ASYM_SCHEME(
        ecdsa=TPMS_SCHEME_HASH(hashAlg=TPM2_ALG.SHA256)))
    return TPMT_PUBLIC(
        type=TPM2_ALG.ECC, nameAlg=TPM2_ALG.SHA256,
        objectAttributes=(TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT
                          | TPMA_OBJECT.SENSITIVEDATAORIGIN | TPMA_OBJECT.USERWITHAUTH
                          | TPMA_OBJECT.RESTRICTED | TPMA_OBJECT.SIGN_ENCRYPT
                          | TPMA_OBJECT.NODA),
        authPolicy=b"",
        parameters=TPMU_PUBLIC_PARMS(eccDetail=TPMS_ECC_PARMS(
            symmetric=TPMT_SYM_DEF_OBJECT(algorithm=TPM2_ALG.NULL), scheme=scheme,
            curveID=TPM2_ECC.NIST_P256, kdf=TPMT_KDF_SCHEME(scheme=TPM2_ALG.NULL))))


def _ecdsa_scheme() -> Any:
    from tpm2_pytss import TPM2_ALG, TPMT_SIG_SCHEME, TPMU_SIG_SCHEME  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415
    from tpm2_pytss.types import TPMS_SCHEME_HASH  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415
    return TPMT_SIG_SCHEME(scheme=TPM2_ALG.ECDSA, details=TPMU_SIG_SCHEME(
        ecdsa=TPMS_SCHEME_HASH(hashAlg=TPM2_ALG.SHA256)))


def _der(signature: Any) -> bytes:
    r = int.from_bytes(bytes(signature.signature.ecdsa.signatureR), "big")
    s = int.from_bytes(bytes(signature.signature.ecdsa.signatureS), "big")
    return encode_dss_signature(r, s)


def _b64(data: Any) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def public_key_of(public_area: Any) -> ec.EllipticCurvePublicKey:
    """TPMT_PUBLIC (ECC P-256) -> cryptography public key."""
    x = bytes(public_area.unique.ecc.x)
    y = bytes(public_area.unique.ecc.y)
    return ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), b"\x04" + x.rjust(32, b"\0") + y.rjust(32, b"\0"))


def create_key() -> bytes:
    """Make a new device key inside the TPM; return its "TSS2 PRIVATE KEY" PEM (a wrapped blob)."""
    from tpm2_pytss.tsskey import TSSPrivKey  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415
    with _esapi() as ctx:
        key = TSSPrivKey.create(ctx, _key_template())
        return bytes(key.to_pem())


class TpmKey:
    """The device key in the TPM. Each operation loads it, uses it and flushes it at once."""

    protection = PROTECTION
    name = NAME

    def __init__(self, pem: bytes) -> None:
        try:
            from tpm2_pytss.tsskey import TSSPrivKey  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415
        except ImportError:
            raise _fail("tpm2-pytss is not installed") from None
        try:
            self._key = TSSPrivKey.from_pem(pem)
        except Exception as exc:  # asn1 / pytss parse errors of a damaged file
            raise KeystoreError(KeyState.KEY_CORRUPT, msg("cert.error.key_corrupt")) from exc
        self._public = public_key_of(self._key.public.publicArea)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def public_area(self) -> bytes:
        return bytes(self._key.public.publicArea.marshal())

    @contextlib.contextmanager
    def _loaded(self, ctx: Any) -> Iterator[Any]:
        handle = self._key.load(ctx)
        try:
            yield handle
        finally:
            ctx.flush_context(handle)

    def sign(self, data: bytes, signature_algorithm: ec.EllipticCurveSignatureAlgorithm,
             ) -> bytes:
        """ECDSA P-256 / SHA-256 over ``data`` inside the TPM; DER, like cryptography's keys."""
        if not isinstance(signature_algorithm.algorithm, hashes.SHA256):
            raise _fail("only ECDSA with SHA-256")
        from tpm2_pytss import TPM2_RH, TPM2_ST, TPMT_TK_HASHCHECK  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415
        digest = hashlib.sha256(data).digest()
        ticket = TPMT_TK_HASHCHECK(tag=TPM2_ST.HASHCHECK, hierarchy=TPM2_RH.NULL)
        with _esapi() as ctx, self._loaded(ctx) as handle:
            return _der(ctx.sign(handle, digest, _ecdsa_scheme(), ticket))

    def key_evidence(self, nonce: bytes) -> dict[str, Any]:
        """TPM2_Certify of this key and TPM2_Quote over the boot PCRs, both by the AK over
        ``nonce``; the verifier checks them (verifier/tpm.py)."""
        from tpm2_pytss import (  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415
            ESYS_TR,
            TPM2B_DATA,
            TPM2B_PUBLIC,
            TPM2B_SENSITIVE_CREATE,
            TPML_PCR_SELECTION,
        )
        selection = "sha256:" + ",".join(str(p) for p in BOOT_PCRS)
        with _esapi() as ctx:
            ak, ak_public, _, _, _ = ctx.create_primary(
                TPM2B_SENSITIVE_CREATE(), TPM2B_PUBLIC(publicArea=_ak_template()),
                ESYS_TR.RH_ENDORSEMENT, TPM2B_DATA(), TPML_PCR_SELECTION())
            try:
                with self._loaded(ctx) as handle:
                    c_attest, c_sig = ctx.certify(handle, ak, nonce, _ecdsa_scheme())
                q_attest, q_sig = ctx.quote(ak, selection, nonce, _ecdsa_scheme())
                _, _, values = ctx.pcr_read(selection)
            finally:
                ctx.flush_context(ak)
        pcrs = {str(p): bytes(values.digests[i]).hex() for i, p in enumerate(BOOT_PCRS)}
        return {
            "provider": NAME,
            "ak_public": _b64(ak_public.publicArea.marshal()),
            "key_public": _b64(self.public_area()),
            "certify": {"attest": _b64(bytes(c_attest)),
                        "signature": _b64(_der(c_sig))},
            "quote": {"attest": _b64(bytes(q_attest)),
                      "signature": _b64(_der(q_sig)), "pcrs": pcrs},
        }


def enable_openssl_provider() -> None:
    """Load tpm2-openssl into the OpenSSL that ``ssl`` uses, so ``load_cert_chain`` can read a
    "TSS2 PRIVATE KEY" file and sign the TLS handshake inside the TPM. Idempotent.

    Measured (docs/certificates.md): OpenSSL 3.0 must fetch the signature from the provider
    that holds the key. With ``default`` loaded first (as soon as the process made any TLS
    connection), or ``?provider=default`` as the default property, it takes the default
    provider's ECDSA, which cannot use a TPM key, and the handshake fails with ``EVP lib``. The
    default property ``?provider=tpm2`` (a preference, not a requirement) fixes it whatever
    happened before.
    """
    if _STATE["provider_loaded"]:
        return
    if not ssl.OPENSSL_VERSION.startswith("OpenSSL 3"):
        raise _fail(f"{ssl.OPENSSL_VERSION} has no providers")
    name = tcti()
    if name is not None:
        os.environ["TPM2OPENSSL_TCTI"] = name
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
    except OSError as exc:
        raise _fail(f"libcrypto: {exc}") from None
    lib.OSSL_PROVIDER_load.restype = ctypes.c_void_p
    lib.OSSL_PROVIDER_load.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    for provider in (b"tpm2", b"default"):
        if not lib.OSSL_PROVIDER_load(None, provider):
            raise _fail(f"OpenSSL provider {provider.decode()} did not load (apt tpm2-openssl)")
    lib.EVP_set_default_properties.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    if lib.EVP_set_default_properties(None, b"?provider=tpm2") != 1:
        raise _fail("OpenSSL refused the default property ?provider=tpm2")
    _STATE["provider_loaded"] = True
