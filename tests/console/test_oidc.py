"""OpenID Connect: the whole redirect -> authorize -> callback flow against a tiny OpenID provider
started here (Starlette + uvicorn on 127.0.0.1, RS256 keys made for the test, PKCE checked), and
the ID token checks one by one (signature, issuer, audience, expiry, nonce, role claim).

The provider is reconstructed from OpenID Connect Core 1.0 (code flow) and RFC 7636 (PKCE);
Entra ID's shape (``roles`` app-role claim, ``preferred_username``) from its ID token reference.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.console.conftest import make_env
from verifier.console.config import OidcConfig
from verifier.console.oidc import OidcClient, OidcError, role_of, validate_id_token
from verifier.console.service import Console
from verifier.console.tables import accounts, audit
from verifier.console.web import build_console_app

CLIENT = "byod-console"
REDIRECT = "https://testserver/console/oidc/callback"


@dataclass
class Provider:
    issuer: str
    key: RSAKey
    claims: dict[str, Any] = field(default_factory=dict)  # extra/overriding ID token claims
    codes: dict[str, dict[str, str]] = field(default_factory=dict)

    def token(self, nonce: str, **over: Any) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": "entra-oid-123", "aud": CLIENT, "iat": now,
                  "exp": now + 300, "nonce": nonce, "preferred_username": "tanaka@city.example",
                  "roles": ["Console.IT"], **self.claims, **over}
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key)

    def app(self) -> Starlette:
        async def discovery(_r: Request) -> Response:
            return JSONResponse({"issuer": self.issuer,
                                 "authorization_endpoint": f"{self.issuer}/authorize",
                                 "token_endpoint": f"{self.issuer}/token",
                                 "jwks_uri": f"{self.issuer}/jwks"})

        async def authorize(r: Request) -> Response:
            q = r.query_params
            assert q["client_id"] == CLIENT and q["code_challenge_method"] == "S256"
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"nonce": q["nonce"], "challenge": q["code_challenge"],
                                "redirect_uri": q["redirect_uri"]}
            query = urllib.parse.urlencode({"code": code, "state": q["state"]})
            back = f"{q['redirect_uri']}?{query}"
            return RedirectResponse(back, status_code=302)

        async def token(r: Request) -> Response:
            form = await r.form()
            grant = self.codes.pop(str(form["code"]), None)
            verifier = str(form.get("code_verifier", ""))
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            if grant is None or digest.rstrip(b"=").decode() != grant["challenge"] \
                    or form.get("redirect_uri") != grant["redirect_uri"]:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return JSONResponse({"access_token": "x", "token_type": "Bearer",
                                 "id_token": self.token(grant["nonce"])})

        async def jwks(_r: Request) -> Response:
            return JSONResponse({"keys": [self.key.as_dict(private=False)]})

        return Starlette(routes=[Route("/.well-known/openid-configuration", discovery),
                                 Route("/authorize", authorize), Route("/token", token,
                                                                       methods=["POST"]),
                                 Route("/jwks", jwks)])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def provider() -> Iterator[Provider]:
    port = _free_port()
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    p = Provider(f"http://127.0.0.1:{port}", key)
    server = uvicorn.Server(uvicorn.Config(p.app(), host="127.0.0.1", port=port,
                                           log_config=None, access_log=False, lifespan="off"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not t.is_alive():
            raise TimeoutError("OIDC provider did not start within 15 s")
        time.sleep(0.05)
    try:
        yield p
    finally:
        server.should_exit = True
        t.join(15)


def oidc_cfg(p: Provider) -> OidcConfig:
    return OidcConfig(p.issuer, CLIENT, None, REDIRECT, "roles", ("Console.IT",),
                      ("Console.HelpDesk",))


def test_redirect_and_callback_sign_in(provider: Provider, tmp_path: Path) -> None:
    env = make_env(tmp_path, f"sqlite:///{tmp_path / 'v.sqlite3'}", seed_fleet=False)
    console = Console(env.console.cfg, env.console.engine, env.console.trust_dir,
                      clock=env.clock, oidc=OidcClient(oidc_cfg(provider)))
    from starlette.testclient import TestClient

    with TestClient(build_console_app(console), base_url="https://testserver",
                    follow_redirects=False) as c:
        assert 'href="/console/oidc/start"' in c.get("/console/login").text
        r = c.get("/console/oidc/start")
        assert r.status_code == 303 and r.headers["location"].startswith(provider.issuer)
        assert "samesite=lax" in r.headers["set-cookie"].lower()
        import httpx

        idp = httpx.get(r.headers["location"], follow_redirects=False, timeout=10)
        back = idp.headers["location"]
        assert back.startswith(REDIRECT)
        r = c.get(back.removeprefix("https://testserver"))
        assert r.status_code == 200 and 'http-equiv="refresh"' in r.text
        assert "samesite=strict" in r.headers["set-cookie"].lower()
        page = c.get("/console/fleet")
        assert page.status_code == 200 and "tanaka@city.example" in page.text
        assert c.get("/console/devices").status_code == 200  # role IT from the claim
        # the same code again (replayed callback): refused
        assert c.get(back.removeprefix("https://testserver")).status_code == 403
    with console.engine.begin() as conn:
        acc = conn.execute(sa.select(accounts).where(accounts.c.oidc_subject == "entra-oid-123")
                           ).one()
        actions = [(a, ok) for a, ok in conn.execute(sa.select(audit.c.action, audit.c.ok))]
    assert acc.role == "it" and acc.password_hash is None
    assert ("oidc_signin", True) in actions


def test_a_user_without_a_console_role_is_refused(provider: Provider, tmp_path: Path) -> None:
    provider.claims = {"roles": ["Payroll.Reader"]}
    client = OidcClient(oidc_cfg(provider))
    url, state = client.start()
    import httpx

    back = httpx.get(url, follow_redirects=False, timeout=10).headers["location"]
    code = urllib.parse.parse_qs(urllib.parse.urlparse(back).query)["code"][0]
    with pytest.raises(OidcError, match="no console role"):
        client.finish(state, code)
    with pytest.raises(OidcError, match="unknown or expired state"):
        client.finish("made-up-state", code)


def test_id_token_checks(provider: Provider) -> None:
    cfg = oidc_cfg(provider)
    jwks = {"keys": [provider.key.as_dict(private=False)]}
    now = time.time()
    assert validate_id_token(provider.token("n1"), jwks, cfg, "n1", now)["sub"] == "entra-oid-123"
    bad = {
        "nonce": provider.token("other"),
        "issuer": provider.token("n1", iss="https://evil.example"),
        "audience": provider.token("n1", aud="someone-else"),
        "expired": provider.token("n1", exp=int(now) - 3600, iat=int(now) - 7200),
        "azp": provider.token("n1", aud=[CLIENT, "other"], azp="other"),
    }
    for what, token in bad.items():
        with pytest.raises(OidcError):
            validate_id_token(token, jwks, cfg, "n1", now)
        del what
    foreign = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    forged = jwt.encode({"alg": "RS256", "kid": "k1"}, {"iss": cfg.issuer, "sub": "x",
                        "aud": CLIENT, "iat": int(now), "exp": int(now) + 60, "nonce": "n1"},
                        foreign)
    with pytest.raises(OidcError, match="signature"):
        validate_id_token(forged, jwks, cfg, "n1", now)
    unsigned = ".".join(base64.urlsafe_b64encode(p).rstrip(b"=").decode() for p in (
        b'{"alg":"none"}', b'{"iss":"x","sub":"x","aud":"byod-console","nonce":"n1"}', b""))
    with pytest.raises(OidcError):
        validate_id_token(unsigned, jwks, cfg, "n1", now)
    assert role_of({"roles": ["Console.HelpDesk"]}, cfg).value == "helpdesk"  # type: ignore[union-attr]
    assert role_of({"roles": "Console.IT"}, cfg).value == "it"  # type: ignore[union-attr]
    assert role_of({}, cfg) is None


def test_tls_verification_cannot_be_switched_off(provider: Provider) -> None:
    with pytest.raises(ValueError, match="cannot be switched off"):
        OidcClient(oidc_cfg(provider), verify=False)
