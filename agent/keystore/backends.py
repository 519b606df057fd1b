"""Which `keyring` backends may hold the key passphrase, and serialized access to them.

Only real OS keystores are accepted, named by class (as maestral does): a plaintext file
(keyrings.alt), the null or fail backend, or a chainer without a real keystore inside is refused,
because `keyring` silently falls back to them when no D-Bus session exists.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import keyring
from keyring import errors as kerr

from agent.core.messages import msg
from agent.keystore.errors import KeyState, KeystoreError

ACCEPTED: frozenset[str] = frozenset({
    "keyring.backends.SecretService.Keyring",
    "keyring.backends.libsecret.Keyring",
    "keyring.backends.Windows.WinVaultKeyring",
    "keyring.backends.macOS.Keyring",
})
_CHAINER = "keyring.backends.chainer.ChainerBackend"
_NO_KEYSTORE = frozenset({"keyring.backends.fail.Keyring", "keyring.backends.null.Keyring"})

# keyring is not thread-safe in practice (Vorta found so); the tray and the renewal timer share it.
_LOCK = threading.Lock()
T = TypeVar("T")


class Backend(Protocol):
    def get_password(self, service: str, username: str) -> str | None: ...
    def set_password(self, service: str, username: str, password: str) -> None: ...
    def delete_password(self, service: str, username: str) -> None: ...


def class_name(backend: object) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def choose(backend: Any) -> Backend:
    """The accepted backend to use, unwrapping a chainer; raises BACKEND_REFUSED otherwise."""
    name = class_name(backend)
    if name in ACCEPTED:
        return backend  # type: ignore[no-any-return]
    if name == _CHAINER:
        real = [b for b in getattr(backend, "backends", ()) if class_name(b) in ACCEPTED]
        if real:
            return real[0]  # type: ignore[no-any-return]
    if name in _NO_KEYSTORE or name == _CHAINER:
        raise KeystoreError(KeyState.BACKEND_REFUSED, msg("cert.error.no_keystore", backend=name))
    raise KeystoreError(KeyState.BACKEND_REFUSED, msg("cert.error.backend_refused", backend=name))


def default_backend() -> Any:
    # Resolved on each call: which backend is usable depends on the session (D-Bus) right now.
    return keyring.get_keyring()


def call(fn: Callable[[], T]) -> T:
    """Run one keyring call under the lock, turning keyring's errors into keystore states."""
    with _LOCK:
        try:
            return fn()
        except kerr.KeyringLocked:
            raise KeystoreError(KeyState.KEYRING_LOCKED, msg("cert.error.keyring_locked")) from None
        except Exception as exc:
            # A third-party boundary: InitError ("Prompt dismissed": no unlocked collection),
            # secretstorage/jeepney errors when D-Bus is gone, Windows/macOS access errors.
            raise KeystoreError(KeyState.KEYRING_UNAVAILABLE,
                                msg("cert.error.keyring_unavailable",
                                    detail=type(exc).__name__)) from None
