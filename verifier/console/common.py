"""Names the console's pages and its sign-in routes share: cookies, the URL prefix, the client."""

from __future__ import annotations

from starlette.requests import Request

COOKIE = "byod_console"
PRE_COOKIE = "byod_console_pre"
LANG_COOKIE = "byod_console_lang"
PREFIX = "/console"


def client_of(request: Request) -> str | None:
    return request.client.host if request.client else None
