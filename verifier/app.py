"""The HTTP surface: thin Starlette routes over verifier.service, plus the enforcement task.

The client certificate comes from the TLS connection (verifier.server puts it into the ASGI
scope as ``scope["extensions"]["tls"]["client_cert_chain"]``, PEM, leaf first); nothing in a
header or body can claim it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route

from agent.attest import wire
from verifier.service import Outcome, Verifier

if TYPE_CHECKING:
    from verifier.console.service import Console

log = logging.getLogger("verifier")


def peer_der(request: Request) -> bytes | None:
    """The verified client certificate (leaf) from the ASGI TLS extension, as DER."""
    tls = (request.scope.get("extensions") or {}).get("tls")
    chain = tls.get("client_cert_chain") if isinstance(tls, dict) else None
    if not chain or not isinstance(chain[0], str):
        return None
    try:
        return ssl.PEM_cert_to_DER_cert(chain[0])
    except ValueError:
        return None


async def read_capped(request: Request, limit: int) -> bytes:
    """At most limit + 1 bytes: enough to refuse, never the whole of a huge body."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return b"\0" * (limit + 1)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)


def _respond(outcome: Outcome) -> JSONResponse:
    return JSONResponse(outcome.body, status_code=outcome.status,
                        headers={"cache-control": "no-store"})


def build_app(verifier: Verifier, *, enforce: bool = True,
              console: Console | None = None) -> Starlette:
    """``console``: keep its fleet figures current after every attestation (docs/console.md)
    and, with ``[console] mount_in_verifier``, serve its pages under /console here too."""

    def attest_and_ingest(der: bytes | None, raw: bytes) -> Outcome:
        outcome = verifier.attest(der, raw)
        if console is not None:
            try:
                console.ingest.after_attest(der, raw, outcome.code, outcome.body)
            except Exception:  # the console never changes the verifier's answer
                log.exception("console ingest failed for this attestation")
        return outcome

    async def nonce(request: Request) -> JSONResponse:
        raw = await read_capped(request, 1024)
        return _respond(await asyncio.to_thread(verifier.nonce, peer_der(request), raw))

    async def attest(request: Request) -> JSONResponse:
        raw = await read_capped(request, wire.MAX_BODY_BYTES)
        return _respond(await asyncio.to_thread(attest_and_ingest, peer_der(request), raw))

    async def health(_request: Request) -> JSONResponse:
        p = verifier.policy.policy
        return JSONResponse({"v": wire.VERSION, "status": "ok", "policy": {
            "id": p.id, "serial": p.serial}, "recheck_seconds": verifier.recheck_seconds,
            "grace_seconds": verifier.grace_seconds})

    async def enforcer() -> None:
        while True:
            await asyncio.sleep(verifier.cfg.enforce_tick_seconds)
            try:
                await asyncio.to_thread(verifier.enforce_once)
            except Exception:
                log.exception("enforcement pass failed")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(enforcer()) if enforce else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def server_error(_request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error: %s", type(exc).__name__, exc_info=exc)
        return _respond(verifier.refusal("internal", None, type(exc).__name__))

    async def not_found(_request: Request, _exc: Any) -> JSONResponse:
        return JSONResponse({"v": wire.VERSION, "error": "not_found",
                             "message_ja": "ありません。", "message_en": "Not found."},
                            status_code=404)

    routes: list[BaseRoute] = [Route(wire.NONCE_PATH, nonce, methods=["POST"]),
                               Route(wire.ATTEST_PATH, attest, methods=["POST"]),
                               Route("/v1/health", health, methods=["GET"])]
    if console is not None and console.cfg.mount_in_verifier:
        from verifier.console.web import build_console_app  # noqa: PLC0415 (optional part)
        routes.append(Mount("/console", app=build_console_app(console, standalone=False)))
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={Exception: server_error, 404: not_found, 405: not_found})
