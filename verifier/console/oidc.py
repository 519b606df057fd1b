"""OpenID Connect sign-in (authorization code flow with PKCE and a nonce) for cities with an IdP.

Entra ID or any other OpenID provider: discovery from ``{issuer}/.well-known/openid-configuration``;
the ID token's JWS signature checked against the provider's JWKS with joserfc (Authlib's JOSE
library), and its claims: ``iss`` equal to the configured issuer, ``aud`` containing our client id
(``azp`` too when there are several audiences), ``exp``/``iat`` with 60 s leeway, and the nonce of
this very sign-in. The console role comes from a claim (Entra app roles: ``roles``); a user the
claim gives no console role is refused. TLS is verified against the system CAs or a CA file;
never switched off.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from verifier.console.accounts import Role
from verifier.console.config import OidcConfig

ALGORITHMS = ("RS256", "PS256", "ES256")
PENDING_SECONDS = 600
MAX_PENDING = 1000
MAX_RESPONSE = 256 * 1024


class OidcError(Exception):
    """A sign-in through the IdP that must be refused; ``detail`` goes to the log only."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Pending:
    nonce: str
    verifier: str
    created: float


@dataclass(frozen=True)
class Identity:
    subject: str
    username: str
    role: Role


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def validate_id_token(token: str, jwks: Mapping[str, Any], cfg: OidcConfig, nonce: str,
                      now: float) -> dict[str, Any]:
    """The ID token's claims, or OidcError. Pure: keys and time are handed in."""
    if not isinstance(token, str) or len(token) > 16 * 1024:
        raise OidcError("no usable id_token")
    try:
        keys = KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
        decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise OidcError(f"id_token signature: {type(exc).__name__}") from None
    claims = dict(decoded.claims)
    registry = jwt.JWTClaimsRegistry(
        now=int(now), leeway=60,
        iss={"essential": True, "value": cfg.issuer},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce})
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise OidcError(f"id_token claims: {type(exc).__name__} {exc}"[:200]) from None
    aud = claims.get("aud")
    auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if cfg.client_id not in auds:
        raise OidcError("id_token is for another client")
    if len(auds) > 1 and claims.get("azp") != cfg.client_id:
        raise OidcError("id_token has several audiences and azp is not us")
    return claims


def role_of(claims: Mapping[str, Any], cfg: OidcConfig) -> Role | None:
    raw = claims.get(cfg.roles_claim)
    values = {raw} if isinstance(raw, str) else set(raw) if isinstance(raw, list) else set()
    if values & set(cfg.it_values):
        return Role.IT
    if values & set(cfg.helpdesk_values):
        return Role.HELPDESK
    return None


class OidcClient:
    def __init__(self, cfg: OidcConfig, *, verify: str | bool = True,
                 clock: Callable[[], float] = time.time,
                 transport: httpx.BaseTransport | None = None) -> None:
        if verify is False:
            raise ValueError("TLS verification cannot be switched off")
        self.cfg = cfg
        self.clock = clock
        self._http = httpx.Client(verify=verify, timeout=10.0, transport=transport,
                                  follow_redirects=False)
        self._meta: dict[str, Any] | None = None
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Lock()

    def _get_json(self, url: str) -> dict[str, Any]:
        r = self._http.get(url)
        if r.status_code != 200 or len(r.content) > MAX_RESPONSE:
            raise OidcError(f"GET {url[:100]}: HTTP {r.status_code}")
        doc = r.json()
        if not isinstance(doc, dict):
            raise OidcError(f"GET {url[:100]}: not a JSON object")
        return doc

    def metadata(self) -> dict[str, Any]:
        if self._meta is None:
            meta = self._get_json(f"{self.cfg.issuer}/.well-known/openid-configuration")
            if meta.get("issuer") != self.cfg.issuer:
                raise OidcError("discovery document names another issuer")
            for k in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(meta.get(k), str):
                    raise OidcError(f"discovery document lacks {k}")
            self._meta = meta
        return self._meta

    def start(self) -> tuple[str, str]:
        """(the IdP's authorization URL, state): the browser goes there next."""
        meta = self.metadata()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        now = self.clock()
        with self._lock:
            for k in [k for k, p in self._pending.items() if now - p.created > PENDING_SECONDS]:
                del self._pending[k]
            if len(self._pending) >= MAX_PENDING:
                raise OidcError("too many sign-ins in progress")
            self._pending[state] = Pending(nonce, verifier, now)
        query = urllib.parse.urlencode({
            "response_type": "code", "client_id": self.cfg.client_id,
            "redirect_uri": self.cfg.redirect_uri, "scope": "openid profile email",
            "state": state, "nonce": nonce, "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256"})
        sep = "&" if "?" in meta["authorization_endpoint"] else "?"
        return f"{meta['authorization_endpoint']}{sep}{query}", state

    def finish(self, state: str, code: str) -> Identity:
        with self._lock:
            pending = self._pending.pop(state, None)
        if pending is None or self.clock() - pending.created > PENDING_SECONDS:
            raise OidcError("unknown or expired state")
        if not code or len(code) > 4096:
            raise OidcError("no authorization code")
        meta = self.metadata()
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": self.cfg.redirect_uri, "client_id": self.cfg.client_id,
                "code_verifier": pending.verifier}
        if self.cfg.client_secret_file is not None:
            lines = self.cfg.client_secret_file.read_text(encoding="utf-8").splitlines()
            form["client_secret"] = lines[0].strip() if lines else ""
        r = self._http.post(meta["token_endpoint"], data=form,
                            headers={"accept": "application/json"})
        if r.status_code != 200 or len(r.content) > MAX_RESPONSE:
            raise OidcError(f"token endpoint: HTTP {r.status_code}")
        body = r.json()
        token = body.get("id_token") if isinstance(body, dict) else None
        jwks = self._get_json(meta["jwks_uri"])
        claims = validate_id_token(str(token or ""), jwks, self.cfg, pending.nonce, self.clock())
        role = role_of(claims, self.cfg)
        if role is None:
            raise OidcError(f"subject {str(claims.get('sub'))[:64]} has no console role")
        name = claims.get(self.cfg.username_claim) or claims.get("email") or claims["sub"]
        return Identity(str(claims["sub"])[:255], str(name)[:64], role)
