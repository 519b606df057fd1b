"""The user certificate: encrypted device key + chain on disk, its passphrase in the OS keystore.
See docs/certificates.md. Import from here; the submodules are implementation detail.
"""

from agent.keystore.certs import CertInfo, ExpiryWarning, expiry_warning, renewal_due
from agent.keystore.errors import KeyState, KeystoreError
from agent.keystore.store import CertStatus, EstConfig, Identity, Keystore

__all__ = ["CertInfo", "CertStatus", "EstConfig", "ExpiryWarning", "Identity", "KeyState",
           "Keystore", "KeystoreError", "expiry_warning", "renewal_due"]
