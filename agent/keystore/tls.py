"""Mutual-TLS client: one ssl.SSLContext for policy fetch, EST renewal and the session tunnel.

TLS 1.2 or newer, only the CA the caller names (never the system store, never verify=False), host
name checked. The device key stays encrypted on disk: OpenSSL decrypts it in memory through the
password callback, fed from the OS keystore.
"""

from __future__ import annotations

import ssl
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from agent.core.messages import msg
from agent.keystore.errors import KeyState, KeystoreError
from agent.keystore.providers import tpm2
from agent.keystore.store import Identity


def client_context(trust_anchor_pem: str, identity: Identity | None = None) -> ssl.SSLContext:
    """A client context trusting only ``trust_anchor_pem``; with ``identity``, it presents it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname by default
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_verify_locations(cadata=trust_anchor_pem)
    except (ssl.SSLError, ValueError):
        raise KeystoreError(KeyState.INVALID_INPUT, msg("cert.error.bad_trust_anchor")) from None
    if identity is not None:
        if identity.protection == "hardware":  # the TPM signs the handshake (tpm2-openssl)
            tpm2.enable_openssl_provider()
        passphrase = identity.passphrase
        try:
            ctx.load_cert_chain(identity.cert_path, identity.key_path, password=lambda: passphrase)
        except (ssl.SSLError, OSError):
            raise KeystoreError(KeyState.KEY_CORRUPT, msg("cert.error.key_corrupt")) from None
    return ctx


class _ContextAdapter(HTTPAdapter):
    """Uses our context as is: requests would otherwise add its CA bundle to it (cert_verify)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, ssl_context=self._context,
                                 **pool_kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        return super().proxy_manager_for(proxy, ssl_context=self._context, **proxy_kwargs)

    def build_connection_pool_key_attributes(self, request: requests.PreparedRequest,
                                             verify: bool | str | None,
                                             cert: Any = None) -> Any:
        if verify is False:
            raise ValueError("verification cannot be turned off on a mutual-TLS session")
        host, _ = super().build_connection_pool_key_attributes(request, True, None)
        return host, {"cert_reqs": "CERT_REQUIRED"}

    def cert_verify(self, conn: Any, url: str, verify: bool | str | None, cert: Any) -> None:
        if verify is False:
            raise ValueError("verification cannot be turned off on a mutual-TLS session")
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None


class _RefusePlainHttp(HTTPAdapter):
    def send(self, request: requests.PreparedRequest, *args: Any,
             **kwargs: Any) -> requests.Response:
        raise requests.exceptions.InvalidURL(f"plain http is not allowed: {request.url}")


def session(context: ssl.SSLContext) -> requests.Session:
    """A requests session that speaks only HTTPS through ``context``.

    trust_env is off: REQUESTS_CA_BUNDLE must not widen the trust, and .netrc must not add
    credentials. (Proxies from the environment are therefore not used either.)
    """
    s = requests.Session()
    s.trust_env = False
    s.mount("https://", _ContextAdapter(context))
    s.mount("http://", _RefusePlainHttp())
    return s
