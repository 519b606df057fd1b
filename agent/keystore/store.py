"""The device identity: encrypted PKCS#8 key + PEM chain on disk, its passphrase in the OS keystore.

Windows Credential Manager holds at most 2560 bytes per secret (an RSA key does not fit), so only
a random passphrase goes to the keyring; OpenSSL decrypts the key in memory when a TLS context
loads it. The passphrase is per device and outlives key rotation, so replacing a key never rewrites
the keyring entry (no window where the stored passphrase and the key file disagree). Every change
is staged to temp files and committed with os.replace only after every check passed.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from agent.core import paths
from agent.core.messages import Message, msg
from agent.keystore import backends, certs, files, pfx_limits
from agent.keystore.certs import CertInfo, ExpiryWarning, PrivateKey
from agent.keystore.errors import KeyState, KeystoreError
from agent.keystore.providers import tpm2

SERVICE = "byod-agent"
PASSPHRASE_NAME = "device-key-passphrase"  # noqa: S105 (the entry name)
KEY_FILE = "device-key.p8.pem"
CERT_FILE = "device-cert.pem"
PENDING_KEY_FILE = "pending-key.p8.pem"
# A TPM key (issue 22): a "TSS2 PRIVATE KEY" blob only this PC's TPM can load; no passphrase.
HW_KEY_FILE = "device-key.tss2.pem"
EST_FILE = "est.json"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Identity:
    """What a TLS client needs. The passphrase lives in memory only and is never printed."""

    cert_path: Path
    key_path: Path
    passphrase: bytes = field(repr=False)
    info: CertInfo
    protection: str = "software"  # agent.keystore.providers.Protection


@dataclass(frozen=True)
class CertStatus:
    state: KeyState
    backend: str
    info: CertInfo | None = None
    message: Message | None = None
    warning: ExpiryWarning | None = None
    protection: str | None = None  # "hardware" / "software" once a key is found

    def to_json(self, now: dt.datetime) -> dict[str, object]:
        out: dict[str, object] = {"state": self.state.value, "backend": self.backend}
        if self.info is not None:
            out.update(subject=self.info.subject, issuer=self.info.issuer, serial=self.info.serial,
                       not_before=self.info.not_before.isoformat(),
                       not_after=self.info.not_after.isoformat(), sha256=self.info.sha256,
                       days_left=self.info.days_left(now))
        out["key_protection"] = self.protection
        out["expiry_warning_days"] = None if self.warning is None else self.warning.threshold
        if self.message is not None:
            out["reason"] = self.message.key
        return out


@dataclass(frozen=True)
class EstConfig:
    url: str
    trust_anchor_pem: str


class Keystore:
    def __init__(self, directory: Path, backend: Any,
                 clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self.directory = directory
        self._raw_backend = backend
        self._clock = clock

    @classmethod
    def default(cls) -> Keystore:
        return cls(paths.data_dir() / "keystore", backends.default_backend())

    # -- keyring ---------------------------------------------------------------------------
    def backend_name(self) -> str:
        return backends.class_name(self._raw_backend)

    def _passphrase(self) -> str | None:
        backend = backends.choose(self._raw_backend)
        return backends.call(lambda: backend.get_password(SERVICE, PASSPHRASE_NAME))

    def _require_passphrase(self) -> bytes:
        value = self._passphrase()
        if not value:
            raise KeystoreError(KeyState.PASSPHRASE_MISSING, msg("cert.error.passphrase_missing"))
        return value.encode()

    # -- reading ---------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        return self.directory / name

    def _load_key(self, name: str, passphrase: bytes) -> PrivateKey:
        path = self._path(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise KeystoreError(KeyState.KEY_MISSING, msg("cert.error.key_missing")) from None
        except OSError:  # unreadable (permissions, I/O error): as unusable as a damaged file
            raise KeystoreError(KeyState.KEY_CORRUPT, msg("cert.error.key_corrupt")) from None
        try:
            key = serialization.load_pem_private_key(data, password=passphrase)
        except (ValueError, TypeError):  # damaged, or not encrypted with the stored passphrase
            raise KeystoreError(KeyState.KEY_CORRUPT, msg("cert.error.key_corrupt")) from None
        if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
            raise KeystoreError(KeyState.KEY_CORRUPT, msg("cert.error.key_corrupt"))
        return key

    def _load_chain(self) -> list[x509.Certificate]:
        try:
            data = self._path(CERT_FILE).read_bytes()
        except FileNotFoundError:
            raise KeystoreError(KeyState.CERT_MISSING, msg("cert.error.cert_missing")) from None
        except OSError:
            raise KeystoreError(KeyState.CERT_CORRUPT, msg("cert.error.cert_corrupt")) from None
        try:
            return x509.load_pem_x509_certificates(data)
        except ValueError:
            raise KeystoreError(KeyState.CERT_CORRUPT, msg("cert.error.cert_corrupt")) from None

    def load_identity(self) -> Identity:
        """The usable identity, or a KeystoreError naming exactly what is wrong."""
        if self._path(HW_KEY_FILE).exists():
            return self._load_hardware_identity()
        key_there = self._path(KEY_FILE).exists()
        cert_there = self._path(CERT_FILE).exists()
        if not key_there and not cert_there:
            if self._path(PENDING_KEY_FILE).exists():
                raise KeystoreError(KeyState.PENDING, msg("cert.info.pending"))
            raise KeystoreError(KeyState.NOT_ENROLLED, msg("cert.info.not_enrolled"))
        if not key_there:
            raise KeystoreError(KeyState.KEY_MISSING, msg("cert.error.key_missing"))
        chain = self._load_chain()
        passphrase = self._require_passphrase()
        key = self._load_key(KEY_FILE, passphrase)
        if not certs.matches(chain[0], key):
            raise KeystoreError(KeyState.KEY_MISMATCH, msg("cert.error.key_mismatch"))
        info = CertInfo.of(chain[0])
        if self._clock() >= info.not_after:
            raise KeystoreError(KeyState.EXPIRED, msg("cert.error.expired",
                                                      not_after=info.not_after.date().isoformat()))
        return Identity(self._path(CERT_FILE), self._path(KEY_FILE), passphrase, info)

    def status(self) -> CertStatus:
        """Never raises: the tray and `cert show` render whatever state this returns."""
        now = self._clock()
        try:
            ident = self.load_identity()
        except KeystoreError as exc:
            info = None
            if exc.state in (KeyState.EXPIRED, KeyState.KEY_MISMATCH, KeyState.PASSPHRASE_MISSING,
                             KeyState.KEY_CORRUPT, KeyState.KEYRING_LOCKED,
                             KeyState.KEYRING_UNAVAILABLE, KeyState.BACKEND_REFUSED,
                             KeyState.KEY_MISSING):
                try:
                    info = CertInfo.of(self._load_chain()[0])
                except KeystoreError:
                    info = None
            warning = certs.expiry_warning(info.not_after, now) if info else None
            protection = ("hardware" if self._path(HW_KEY_FILE).exists() else
                          "software" if self._path(KEY_FILE).exists() else None)
            return CertStatus(exc.state, self.backend_name(), info, exc.message, warning,
                              protection)
        return CertStatus(KeyState.OK, self.backend_name(), ident.info, None,
                      certs.expiry_warning(ident.info.not_after, now), ident.protection)

    # -- hardware keys (agent.keystore.providers) -------------------------------------------
    def _load_hardware_identity(self) -> Identity:
        chain = self._load_chain()
        try:
            key = tpm2.TpmKey(self._path(HW_KEY_FILE).read_bytes())
        except OSError:
            raise KeystoreError(KeyState.KEY_CORRUPT, msg("cert.error.key_corrupt")) from None
        if certs.public_key_bytes(chain[0].public_key()) != certs.public_key_bytes(
                key.public_key()):
            raise KeystoreError(KeyState.KEY_MISMATCH, msg("cert.error.key_mismatch"))
        info = CertInfo.of(chain[0])
        if self._clock() >= info.not_after:
            raise KeystoreError(KeyState.EXPIRED, msg("cert.error.expired",
                                                      not_after=info.not_after.date().isoformat()))
        return Identity(self._path(CERT_FILE), self._path(HW_KEY_FILE), b"", info,
                        protection="hardware")

    def adopt_hardware(self, key_pem: bytes, public_key: Any,
                       issued: list[x509.Certificate]) -> CertInfo:
        """Store a TPM key blob with the certificate a CA issued for it (EST). No keyring entry:
        the key needs no passphrase, and the blob is useless outside this PC's TPM. A software
        key of an earlier enrollment is removed, so exactly one device key is in use."""
        want = certs.public_key_bytes(public_key)
        leaves = [c for c in issued if certs.public_key_bytes(c.public_key()) == want]
        if not leaves:
            raise KeystoreError(KeyState.KEY_MISMATCH, msg("cert.error.key_mismatch"))
        chain = [leaves[0], *(c for c in issued if c is not leaves[0])]
        certs.check_client_certificate(chain[0], self._clock())
        self._write({HW_KEY_FILE: key_pem, CERT_FILE: certs.chain_pem(chain)}, None,
                    drop_pending=True)
        try:
            files.remove(self._path(KEY_FILE))
        except OSError:
            raise KeystoreError(KeyState.WRITE_FAILED, msg("cert.error.write_failed",
                                                           path=str(self.directory))) from None
        return CertInfo.of(chain[0])

    # -- writing ---------------------------------------------------------------------------
    def _prepare_passphrase(self) -> tuple[bytes, Callable[[], None] | None]:
        """The device passphrase, plus a function that stores it when it is new.

        The keyring is asked first, so a refused, locked or missing keystore stops before any file.
        """
        existing = self._passphrase()
        if existing:
            return existing.encode(), None
        fresh = secrets.token_urlsafe(32)  # 43 characters: far below Credential Manager's limit
        backend = backends.choose(self._raw_backend)
        return fresh.encode(), lambda: backends.call(
            lambda: backend.set_password(SERVICE, PASSPHRASE_NAME, fresh))

    def _write(self, contents: dict[str, bytes], passphrase_store: Callable[[], None] | None,
               drop_pending: bool = False) -> None:
        stored = False
        try:
            files.private_dir(self.directory)
            with files.staged(self.directory, contents) as temps:
                if passphrase_store is not None:
                    passphrase_store()
                    stored = True
                files.commit(self.directory, temps)
            if drop_pending:
                files.remove(self._path(PENDING_KEY_FILE))
        except OSError:
            if stored:  # a brand-new passphrase must not outlive the files it was made for
                self._forget_passphrase()
            raise KeystoreError(KeyState.WRITE_FAILED, msg("cert.error.write_failed",
                                                           path=str(self.directory))) from None

    def _forget_passphrase(self) -> bool:
        try:
            backend = backends.choose(self._raw_backend)
            if self._passphrase() is not None:
                backends.call(lambda: backend.delete_password(SERVICE, PASSPHRASE_NAME))
        except KeystoreError:
            return False
        return True

    @staticmethod
    def _encrypt(key: PrivateKey, passphrase: bytes) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.BestAvailableEncryption(passphrase))

    def _store_identity(self, key: PrivateKey, issued: list[x509.Certificate]) -> CertInfo:
        """Check the key and its certificate, then write both; nothing is written on failure."""
        key = certs.check_key_strength(key)
        chain = certs.order_chain(key, issued)
        certs.check_client_certificate(chain[0], self._clock())
        passphrase, store = self._prepare_passphrase()
        self._write({KEY_FILE: self._encrypt(key, passphrase), CERT_FILE: certs.chain_pem(chain)},
                    store, drop_pending=True)
        return CertInfo.of(chain[0])

    def import_pkcs12(self, data: bytes, password: bytes | None) -> CertInfo:
        bundle = pfx_limits.load(data, password)  # KDF caps before OpenSSL runs (issue 18)
        if bundle.key is None:
            raise KeystoreError(KeyState.INVALID_INPUT, msg("cert.error.p12_no_key"))
        if bundle.cert is None:
            raise KeystoreError(KeyState.INVALID_INPUT, msg("cert.error.p12_no_cert"))
        others = [c.certificate for c in bundle.additional_certs]
        return self._store_identity(certs.check_key_strength(bundle.key),
                                    [bundle.cert.certificate, *others])

    def adopt(self, key: PrivateKey, issued: list[x509.Certificate]) -> CertInfo:
        """Store a key made in memory with the certificate a CA issued for it (EST)."""
        return self._store_identity(key, issued)

    def create_request(self, subject: str) -> bytes:
        """Make and keep a new EC P-256 key (pending until `install`); return the CSR as PEM."""
        key, csr = new_key_and_csr(subject)
        passphrase, store = self._prepare_passphrase()
        self._write({PENDING_KEY_FILE: self._encrypt(key, passphrase)}, store)
        return csr

    def install(self, data: bytes) -> CertInfo:
        """Pair an issued certificate (PEM, DER or PKCS#7) with the pending or current key."""
        issued = certs.load_certificates(data)
        passphrase = self._require_passphrase()
        for name in (PENDING_KEY_FILE, KEY_FILE):
            if not self._path(name).exists():
                continue
            key = self._load_key(name, passphrase)
            if not any(certs.matches(c, key) for c in issued):
                continue
            chain = certs.order_chain(key, issued)
            certs.check_client_certificate(chain[0], self._clock())
            contents = {CERT_FILE: certs.chain_pem(chain)}
            if name == PENDING_KEY_FILE:
                contents[KEY_FILE] = self._read_pending()
            self._write(contents, None, drop_pending=name == PENDING_KEY_FILE)
            return CertInfo.of(chain[0])
        if not any(self._path(n).exists() for n in (PENDING_KEY_FILE, KEY_FILE)):
            raise KeystoreError(KeyState.KEY_MISSING, msg("cert.error.no_pending_key"))
        raise KeystoreError(KeyState.KEY_MISMATCH, msg("cert.error.key_mismatch"))

    def _read_pending(self) -> bytes:
        try:
            return self._path(PENDING_KEY_FILE).read_bytes()
        except OSError:
            raise KeystoreError(KeyState.KEY_CORRUPT, msg("cert.error.key_corrupt")) from None

    def remove(self) -> bool:
        """Delete files and the passphrase. False when the keyring entry could not be removed."""
        for name in (KEY_FILE, HW_KEY_FILE, CERT_FILE, PENDING_KEY_FILE, EST_FILE):
            try:
                files.remove(self._path(name))
            except OSError:
                raise KeystoreError(KeyState.WRITE_FAILED, msg(
                    "cert.error.write_failed", path=str(self.directory))) from None
        return self._forget_passphrase()

    # -- EST settings (public data: where to renew, which CA to trust) ----------------------
    def save_est_config(self, config: EstConfig) -> None:
        data = json.dumps({"url": config.url, "trust_anchor_pem": config.trust_anchor_pem})
        self._write({EST_FILE: data.encode()}, None)

    def est_config(self) -> EstConfig | None:
        try:
            raw = json.loads(self._path(EST_FILE).read_text(encoding="utf-8"))
            return EstConfig(str(raw["url"]), str(raw["trust_anchor_pem"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None



def new_key_and_csr(subject: str) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    """A fresh EC P-256 key and a PEM CSR asking for TLS client authentication."""
    try:
        name = x509.Name.from_rfc4514_string(subject)
    except ValueError:
        name = x509.Name([])
    if not name.rdns:
        raise KeystoreError(KeyState.INVALID_INPUT, msg("cert.error.bad_subject", subject=subject))
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder().subject_name(name)
           .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
           .sign(key, hashes.SHA256()))
    return key, csr.public_bytes(serialization.Encoding.PEM)
