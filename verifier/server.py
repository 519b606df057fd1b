"""uvicorn with mutual TLS, and the verified client certificate in the ASGI scope.

uvicorn 0.54 (the version we pin against) does not yet implement the ASGI TLS extension (pull
requests Kludex/uvicorn#3043, #3132, #3133 are not in a release). So this module subclasses its
h11 protocol: at connection time it reads the peer certificate that OpenSSL has already verified
against the city CA (``CERT_REQUIRED``) and puts it into every request's scope as
``scope["extensions"]["tls"]["client_cert_chain"]`` (PEM, leaf first, as in the extension's
spec). A uvicorn that fills the extension itself wins (``setdefault``). The certificate is read
once per connection (bench/verifier.py measures the whole server against a bare route).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from verifier.config import VerifierConfig

log = logging.getLogger("verifier")


class _TlsScopeApp:
    def __init__(self, app: Any, chain: list[str]) -> None:
        self.app = app
        self.chain = chain

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket"):
            ext = scope.setdefault("extensions", {})
            ext.setdefault("tls", {"client_cert_chain": list(self.chain)})
        await self.app(scope, receive, send)


class TlsH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        obj = transport.get_extra_info("ssl_object")
        der = obj.getpeercert(binary_form=True) if obj is not None else None
        if der:
            self.app = _TlsScopeApp(self.app, [ssl.DER_cert_to_PEM_cert(der)])


def ssl_context(cfg: VerifierConfig) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cfg.tls_cert), str(cfg.tls_key))
    ctx.load_verify_locations(cafile=str(cfg.city_ca))
    ctx.verify_mode = ssl.CERT_REQUIRED  # no user certificate, no HTTP at all
    return ctx


def uvicorn_config(app: Any, cfg: VerifierConfig) -> uvicorn.Config:
    config = uvicorn.Config(
        app, host=cfg.listen_host, port=cfg.listen_port, http=TlsH11Protocol, ws="none",
        lifespan="on", log_config=None, access_log=False, server_header=False,
        ssl_certfile=str(cfg.tls_cert), ssl_keyfile=str(cfg.tls_key),
        ssl_ca_certs=str(cfg.city_ca), ssl_cert_reqs=ssl.CERT_REQUIRED,
        ssl_context_factory=lambda _c, _default: ssl_context(cfg),
        timeout_keep_alive=30, limit_concurrency=512)
    return config


def run(app: Any, cfg: VerifierConfig) -> None:
    server = uvicorn.Server(uvicorn_config(app, cfg))
    log.info("verifier listening on https://%s:%d", cfg.listen_host, cfg.listen_port)
    server.run()
