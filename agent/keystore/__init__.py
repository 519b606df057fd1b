"""The user certificate: encrypted device key + chain on disk, its passphrase in the OS keystore.
See docs/certificates.md. Import from here; the submodules are implementation detail.
"""

from agent.keystore.certs import CertInfo, ExpiryWarning, expiry_warning, renewal_due
from agent.keystore.errors import KeyState, KeystoreError
from agent.keystore.store import EstConfig, Identity, Keystore, Status

__all__ = ["CertInfo", "EstConfig", "ExpiryWarning", "Identity", "KeyState", "Keystore",
           "KeystoreError", "Status", "expiry_warning", "renewal_due"]
