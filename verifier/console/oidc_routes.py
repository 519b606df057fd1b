"""The two OpenID Connect routes: /oidc/start (to the IdP) and /oidc/callback (back from it).

The state cookie is SameSite=Lax (the IdP's redirect back is a cross-site navigation, which a
Strict cookie would not survive); the session cookie set on the callback stays Strict, so the
callback answers with a small page that moves on by a same-site navigation (meta refresh, no
script) instead of a redirect the browser would still count as cross-site.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from verifier.console import security
from verifier.console.common import COOKIE, PREFIX, client_of
from verifier.console.oidc import OidcClient, OidcError

if TYPE_CHECKING:
    from verifier.console.service import Console

log = logging.getLogger("verifier.console")
STATE_COOKIE = "byod_console_oidc"


class Pages(Protocol):  # what these routes use of verifier.console.web.Pages
    def headers(self) -> dict[str, str]: ...

    def error(self, request: Request, status: int, key: str) -> Response: ...

    def _cookie(self, resp: Response, name: str, value: str, max_age: int | None, *,
                http_only: bool = True) -> None: ...


def make_routes(pages: Pages, console: Console) -> list[BaseRoute]:
    client: OidcClient = console.oidc

    async def start(request: Request) -> Response:
        try:
            url, state = await run_in_threadpool(client.start)
        except (OidcError, OSError, ValueError) as exc:
            log.error("OIDC start failed: %s", getattr(exc, "detail", type(exc).__name__))
            return pages.error(request, 502, "console.error.oidc")
        resp = RedirectResponse(url, status_code=303, headers=pages.headers())
        resp.set_cookie(STATE_COOKIE, state, max_age=600, path=f"{PREFIX}/oidc",
                        secure=console.cfg.secure_cookies, httponly=True, samesite="lax")
        return resp

    async def callback(request: Request) -> Response:
        state = request.query_params.get("state", "")
        code = request.query_params.get("code", "")
        now = console.now()
        if not security.same(state, request.cookies.get(STATE_COOKIE)):
            return pages.error(request, 403, "console.error.oidc")
        try:
            ident = await run_in_threadpool(client.finish, state, code)
        except (OidcError, OSError, ValueError) as exc:
            detail = getattr(exc, "detail", type(exc).__name__)
            log.warning("OIDC sign-in refused: %s", detail)
            await run_in_threadpool(console.accounts.record, now, "oidc", None, "oidc_signin",
                                    str(detail)[:128], ok=False, client=client_of(request))
            return pages.error(request, 403, "console.error.oidc")
        account = await run_in_threadpool(console.accounts.oidc_account, ident.subject,
                                          ident.username, ident.role, now)
        await run_in_threadpool(console.accounts.record, now, account.username,
                                account.role.value, "oidc_signin", None, ok=True,
                                client=client_of(request))
        token = await run_in_threadpool(console.accounts.open_session, account, now)
        page = (f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" '
                f'content="0;url={PREFIX}/"><a href="{PREFIX}/">{PREFIX}/</a>')
        resp = HTMLResponse(page, headers=pages.headers())
        pages._cookie(resp, COOKIE, token, None)
        resp.delete_cookie(STATE_COOKIE, path=f"{PREFIX}/oidc")
        return resp

    return [Route("/oidc/start", start), Route("/oidc/callback", callback)]
