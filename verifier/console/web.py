"""The console's HTTP surface: thin Starlette routes over accounts, queries, impact, retention.

Every page: a signed-in session (cookie ``byod_console``, HttpOnly, Secure, SameSite=Strict, its
SHA-256 in the database), the role the page needs, and on every POST the session's CSRF token
(the sign-in form has its own pre-session token). Templates autoescape, and every value goes
through ``security.visible`` first, so bidi overrides and terminal escapes in a report are shown
as ``<U+202E>``, never obeyed. Responses carry a CSP without scripts, no-store and
frame-ancestors 'none'.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import io
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from agent.core import i18n
from agent.policy.errors import PolicyRefused
from agent.presentation import remediation
from verifier.console import impact, queries, retention, security
from verifier.console.accounts import Account, Role, SessionInfo, SignIn
from verifier.console.common import COOKIE, LANG_COOKIE, PRE_COOKIE, PREFIX, client_of
from verifier.console.privacy import NOT_STORED, STORED
from verifier.console.service import Console

log = logging.getLogger("verifier.console")
HERE = Path(__file__).resolve().parent
CID_RE = re.compile(r"[A-Z2-7]{8}")
BUNDLE_RE = re.compile(r"[A-Z2-7]{4}-?[A-Z2-7]{4}")
FP_RE = re.compile(r"[0-9a-f]{64}")
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
Handler = Callable[[Request, SessionInfo], Awaitable[Response]]


def _finalize(value: object) -> object:
    if isinstance(value, dict | list | tuple):
        value = json.dumps(value, ensure_ascii=False, default=str)[:4000]
    if isinstance(value, str):
        return security.visible(value)
    return "" if value is None else value


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, finalize=_finalize, undefined=jinja2.StrictUndefined)
    return env


MAX_POST = 3 * 1024 * 1024  # a draft policy (1 MiB), its signature and the form around them


def body_fits(request: Request, limit: int) -> bool:
    """Form bodies are read whole by the form parser: refuse a large or unsized one first."""
    declared = request.headers.get("content-length", "")
    return declared.isdigit() and int(declared) <= limit


def language(request: Request) -> str:
    q = request.query_params.get("lang")
    if q in i18n.LANGS:
        return q
    c = request.cookies.get(LANG_COOKIE)
    if c in i18n.LANGS:
        return c
    for part in request.headers.get("accept-language", "")[:200].split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("ja"):
            return "ja"
        if tag.startswith("en"):
            return "en"
    return i18n.DEFAULT_LANG


def when(ts: float | None, zone: Any) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M")


class Pages:
    def __init__(self, console: Console) -> None:
        self.c = console
        self.env = environment()

    # -- rendering ------------------------------------------------------------------------
    def headers(self) -> dict[str, str]:
        return {"content-security-policy": CSP, "cache-control": "no-store",
                "x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
                "x-frame-options": "DENY"}

    def render(self, request: Request, name: str, status: int = 200,
               session: SessionInfo | None = None, **ctx: Any) -> HTMLResponse:
        lang = language(request)

        def t(key: str, **params: object) -> str:
            return i18n.text(key, lang, **params)

        html = self.env.get_template(name).render(
            t=t, lang=lang, base=PREFIX, session=session,
            account=session.account if session else None,
            is_it=session is not None and session.account.role is Role.IT,
            csrf=session.csrf if session else "", path=request.url.path,
            when=lambda ts: when(ts, self.c.cfg.zone), **ctx)
        resp = HTMLResponse(html, status_code=status, headers=self.headers())
        if request.query_params.get("lang") in i18n.LANGS:
            self._cookie(resp, LANG_COOKIE, lang, 365 * 86400, http_only=False)
        return resp

    def _cookie(self, resp: Response, name: str, value: str, max_age: int | None, *,
                http_only: bool = True) -> None:
        resp.set_cookie(name, value, max_age=max_age, path=PREFIX, secure=self.c.cfg.secure_cookies,
                        httponly=http_only, samesite="strict")

    def error(self, request: Request, status: int, key: str,
              session: SessionInfo | None = None) -> HTMLResponse:
        return self.render(request, "error.html", status=status, session=session, message=key)

    # -- guard ----------------------------------------------------------------------------
    def guard(self, *roles: Role) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
        def deco(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                now = self.c.now()
                info = await run_in_threadpool(self.c.accounts.session,
                                               request.cookies.get(COOKIE), now)
                if info is None:
                    if request.method == "GET":
                        return RedirectResponse(f"{PREFIX}/login", status_code=303,
                                                headers=self.headers())
                    return self.error(request, 403, "console.error.signed_out")
                if info.account.role not in roles:
                    await run_in_threadpool(self.c.accounts.record, now, info.account.username,
                                            info.account.role.value, "denied",
                                            request.url.path[:128], ok=False,
                                            client=client_of(request))
                    return self.error(request, 403, "console.error.forbidden", info)
                if request.method == "POST":
                    if not body_fits(request, MAX_POST):
                        return self.error(request, 413, "console.error.too_large", info)
                    form = await request.form(max_files=2, max_fields=30,
                                              max_part_size=1 << 20)
                    token = form.get("csrf")
                    if not isinstance(token, str) or not security.same(token, info.csrf):
                        return self.error(request, 403, "console.error.csrf", info)
                return await fn(request, info)
            return endpoint
        return deco

    # -- sign-in --------------------------------------------------------------------------
    async def login_form(self, request: Request, problem: str | None = None,
                         status: int = 200) -> Response:
        pre = security.new_token()
        resp = self.render(request, "login.html", status=status, pre=pre, problem=problem,
                           oidc=self.c.oidc is not None)
        self._cookie(resp, PRE_COOKIE, pre, 600)
        return resp

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return await self.login_form(request)
        if not body_fits(request, 16 * 1024):
            return await self.login_form(request, "console.error.too_large", 413)
        form = await request.form(max_files=0, max_fields=10, max_part_size=4096)
        pre = form.get("pre")
        if not isinstance(pre, str) or not security.same(pre, request.cookies.get(PRE_COOKIE)):
            return await self.login_form(request, "console.login.csrf", 403)
        fields = [form.get(k) for k in ("username", "password", "code")]
        username, password, code = (f if isinstance(f, str) else "" for f in fields)
        now = self.c.now()
        result, account = await run_in_threadpool(self.c.accounts.sign_in, username, password,
                                                  code, now, client_of(request))
        if result is not SignIn.OK or account is None:
            key = "console.login.locked" if result is SignIn.LOCKED else "console.login.bad"
            return await self.login_form(request, key, 401)
        return await self.start_session(request, account)

    async def start_session(self, request: Request, account: Account) -> Response:
        token = await run_in_threadpool(self.c.accounts.open_session, account, self.c.now())
        resp = RedirectResponse(f"{PREFIX}/", status_code=303, headers=self.headers())
        self._cookie(resp, COOKIE, token, None)
        resp.delete_cookie(PRE_COOKIE, path=PREFIX)
        return resp

    async def logout(self, request: Request, info: SessionInfo) -> Response:
        await run_in_threadpool(self.c.accounts.close_session, info, self.c.now(),
                                client_of(request))
        resp = RedirectResponse(f"{PREFIX}/login", status_code=303, headers=self.headers())
        resp.delete_cookie(COOKIE, path=PREFIX, secure=self.c.cfg.secure_cookies,
                           httponly=True, samesite="strict")
        return resp

    # -- fleet ----------------------------------------------------------------------------
    def filters(self, request: Request) -> queries.Filters:
        q = request.query_params
        period = 7 if q.get("period") == "week" else 1
        check = q.get("check") or None
        if check is not None and not re.fullmatch(r"[a-z0-9_]{1,64}", check):
            check = None
        serial_text = q.get("serial") or ""
        compliant = {"yes": True, "no": False}.get(q.get("compliant", ""))
        return queries.Filters(period, check, (q.get("version") or None),
                               int(serial_text) if serial_text.isdigit() and
                               len(serial_text) < 16 else None,
                               (q.get("department") or None), compliant)

    async def fleet(self, request: Request, info: SessionInfo) -> Response:
        f = self.filters(request)
        now = self.c.now()
        data = await run_in_threadpool(queries.fleet, self.c.engine, f, now, self.c.cfg.zone,
                                       self.c.cfg.not_seen_days)
        return self.render(request, "fleet.html", session=info, fleet=data, f=f,
                           choices=data.choices, chart=chart(data.trend),
                           not_seen_days=self.c.cfg.not_seen_days,
                           query=request.url.query)

    async def devices(self, request: Request, info: SessionInfo) -> Response:
        f = self.filters(request)
        now = self.c.now()
        rows = await run_in_threadpool(queries.device_list, self.c.engine, f, now)
        expiring = await run_in_threadpool(queries.expiring_certs, self.c.engine, now)
        stale = await run_in_threadpool(queries.not_seen, self.c.engine, now,
                                        self.c.cfg.not_seen_days)
        choices = await run_in_threadpool(queries.filter_choices, self.c.engine)
        return self.render(request, "devices.html", session=info, rows=rows, f=f,
                           expiring=expiring, stale=stale, choices=choices,
                           not_seen_days=self.c.cfg.not_seen_days, query=request.url.query)

    async def export(self, request: Request, info: SessionInfo) -> Response:
        f = self.filters(request)
        now = self.c.now()
        rows = await run_in_threadpool(queries.device_list, self.c.engine, f, now,
                                       limit=100_000)
        await run_in_threadpool(self.c.accounts.record, now, info.account.username,
                                info.account.role.value, "export", f"{len(rows)} devices",
                                ok=True, client=client_of(request))
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        cols = ("user", "department", "cert_fp", "last_at", "last_compliant", "blocked",
                "warned", "agent_version", "policy_id", "policy_serial", "cert_not_after", "os",
                "last_correlation_id")
        w.writerow(cols)
        for r in rows:
            vals = dict(r)
            for k in ("last_at", "cert_not_after"):
                vals[k] = when(vals.get(k), self.c.cfg.zone)
            w.writerow([security.csv_cell(vals.get(k)) for k in cols])
        stamp = dt.datetime.fromtimestamp(now, self.c.cfg.zone).strftime("%Y%m%d-%H%M")
        return Response("\ufeff" + buf.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={**self.headers(), "content-disposition":
                                 f'attachment; filename="byod-fleet-{stamp}.csv"'})

    async def device(self, request: Request, info: SessionInfo) -> Response:
        fp = request.path_params["fp"]
        if not FP_RE.fullmatch(fp):
            return self.error(request, 404, "console.error.not_found", info)
        data = await run_in_threadpool(queries.device, self.c.engine, fp)
        await run_in_threadpool(self.c.accounts.record, self.c.now(), info.account.username,
                                info.account.role.value, "device_view", fp, ok=data is not None,
                                client=client_of(request))
        if data is None:
            return self.error(request, 404, "console.error.not_found", info)
        return self.render(request, "device.html", session=info, d=data["device"],
                           history=data["history"], events=data["events"])

    # -- look-up --------------------------------------------------------------------------
    async def lookup(self, request: Request, info: SessionInfo) -> Response:
        raw = (request.query_params.get("id") or "").strip().upper()[:20]
        found = None
        problem = None
        if raw:
            cid = raw.replace(" ", "")
            if BUNDLE_RE.fullmatch(cid) and "-" in cid:
                problem = "console.lookup.bundle_id"
            elif not CID_RE.fullmatch(cid):
                problem = "console.lookup.bad_id"
            else:
                found = await run_in_threadpool(queries.lookup, self.c.engine, cid)
                await run_in_threadpool(self.c.accounts.record, self.c.now(),
                                        info.account.username, info.account.role.value,
                                        "lookup", cid, ok=found is not None,
                                        client=client_of(request))
                if found is None:
                    problem = "console.lookup.none"
        fixes = []
        if found is not None:
            lang = language(request)
            for chk in found["checks"]:
                if chk.get("outcome") not in ("block", "warn"):
                    continue
                # only what the agent showed: no recorded key, no steps (never a guess)
                key = found["remediation"].get(str(chk.get("id")))
                if key is None or f"remediation.{key}.steps" not in i18n.catalogue("en"):
                    continue
                fixes.append({"check": chk.get("id"), "title": remediation.title(key, lang),
                              "steps": remediation.steps(key, lang),
                              "uri": remediation.settings_uri(key, found["os"] or "")})
        return self.render(request, "lookup.html", session=info, q=raw, found=found,
                           problem=problem, fixes=fixes)

    # -- impact ---------------------------------------------------------------------------
    async def impact(self, request: Request, info: SessionInfo) -> Response:
        if request.method == "GET":
            return self.render(request, "impact.html", session=info, result=None, draft=None,
                               problem=None)
        form = await request.form(max_files=2, max_fields=30, max_part_size=1 << 20)
        pol, sig = form.get("policy"), form.get("signature")
        data = await pol.read(impact.MAX_POLICY_BYTES + 1) if isinstance(pol, UploadFile) \
            else b""
        sig_data = await sig.read(4097) if isinstance(sig, UploadFile) else b""
        problem = None
        draft = result = None
        if not data:
            problem = "console.impact.no_file"
        else:
            try:
                draft = impact.parse_draft(data, sig_data or None, self.c.trust_dir)
            except PolicyRefused as exc:
                problem_text = i18n.render(exc.message, language(request))
                return self.render(request, "impact.html", session=info, result=None,
                                   draft=None, problem=None, problem_text=problem_text,
                                   status=400)
            now = dt.datetime.fromtimestamp(self.c.now(), dt.UTC)
            result = await run_in_threadpool(impact.preview, self.c.engine, draft.policy, now)
            await run_in_threadpool(self.c.accounts.record, self.c.now(),
                                    info.account.username, info.account.role.value,
                                    "impact_preview",
                                    f"{draft.policy.id}/{draft.policy.serial}", ok=True,
                                    client=client_of(request))
        return self.render(request, "impact.html", session=info, result=result, draft=draft,
                           problem=problem)

    # -- privacy, audit -------------------------------------------------------------------
    async def privacy(self, request: Request, info: SessionInfo) -> Response:
        return self.render(request, "privacy.html", session=info, stored=STORED,
                           not_stored=NOT_STORED, days=self.c.cfg.retention_days)

    async def audit(self, request: Request, info: SessionInfo) -> Response:
        rows = await run_in_threadpool(self.c.accounts.audit_page)
        return self.render(request, "audit.html", session=info, rows=rows)

    async def home(self, request: Request, info: SessionInfo) -> Response:
        target = "fleet" if info.account.role is Role.IT else "lookup"
        return RedirectResponse(f"{PREFIX}/{target}", status_code=303, headers=self.headers())


def chart(trend: list[dict[str, Any]], width: int = 960, height: int = 180) -> dict[str, Any]:
    """A 30-day bar chart as coordinates for the SVG template: devices seen (bar), compliant
    (inner bar). No script, readable without colour (a table of the same numbers follows)."""
    top = max([d["devices"] for d in trend] + [1])
    n = max(len(trend), 1)
    slot = (width - 80) / n  # 40 px for the scale on the left, 40 for the last label
    bars = []
    for i, d in enumerate(trend):
        h = (height - 30) * d["devices"] / top
        hc = (height - 30) * d["compliant"] / top
        x = 40 + i * slot
        bars.append({"x": round(x + 1, 1), "w": round(max(slot - 2, 1), 1),
                     "y": round(height - 20 - h, 1), "h": round(h, 1),
                     "yc": round(height - 20 - hc, 1), "hc": round(hc, 1),
                     "day": d["day"], "devices": d["devices"], "compliant": d["compliant"],
                     "label": d["day"][5:] if i % 5 == 0 or i == n - 1 else ""})
    return {"width": width, "height": height, "top": top, "bars": bars}


def build_console_app(console: Console, *, standalone: bool = True) -> Starlette:
    """The console as an ASGI app. ``standalone``: routes under /console plus a redirect from /,
    with the retention job; else the bare routes, for verifier/app.py to mount at /console."""
    p = Pages(console)
    it, both = p.guard(Role.IT), p.guard(Role.IT, Role.HELPDESK)
    routes = [
        Route("/", both(p.home)),
        Route("/login", p.login, methods=["GET", "POST"]),
        Route("/logout", both(p.logout), methods=["POST"]),
        Route("/fleet", both(p.fleet)),
        Route("/devices", it(p.devices)),
        Route("/devices/{fp}", it(p.device)),
        Route("/export.csv", it(p.export)),
        Route("/lookup", both(p.lookup)),
        Route("/impact", it(p.impact), methods=["GET", "POST"]),
        Route("/privacy", both(p.privacy)),
        Route("/audit", it(p.audit)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    if console.oidc is not None:
        from verifier.console import oidc_routes  # noqa: PLC0415 (only with an IdP configured)
        routes += oidc_routes.make_routes(p, console)

    async def not_found(request: Request, _exc: Any) -> Response:
        return p.error(request, 404, "console.error.not_found")

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("console error: %s", type(exc).__name__, exc_info=exc)
        return p.error(request, 500, "console.error.internal")

    handlers: dict[Any, Any] = {404: not_found, 405: not_found, Exception: server_error}
    if not standalone:
        return Starlette(routes=routes, exception_handlers=handlers)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(console.job_loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def root(_request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=303)

    return Starlette(routes=[Route("/", root), Mount(PREFIX, routes=routes)],
                     exception_handlers=handlers, lifespan=lifespan)


__all__ = ["build_console_app", "retention"]
