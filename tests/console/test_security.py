"""Security: anonymous access, roles, CSRF, cookies, escaping of hostile report text, TOTP
(replay included), lockout; and the pure helpers (argon2id, sealing, CSV cells)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from tests.console.conftest import HD_SEED, IT_SEED, PASSWORD, Env, sign_in
from verifier.console import security
from verifier.console.tables import audit

IT_ONLY_GET = ["/console/devices", "/console/export.csv", "/console/impact", "/console/audit"]
ALL_GET = ["/console/", "/console/fleet", "/console/lookup", "/console/privacy", *IT_ONLY_GET]


def csrf_of(client: TestClient) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/privacy").text)
    assert m
    return m.group(1)


def test_anonymous_is_sent_to_sign_in_and_posts_are_refused(env: Env) -> None:
    assert env.seeded is not None
    with env.client() as c:
        for path in [*ALL_GET, f"/console/devices/{env.seeded.fps['user00']}",
                     f"/console/lookup?id={env.seeded.cids['user08']}"]:
            r = c.get(path)
            assert r.status_code == 303 and r.headers["location"] == "/console/login", path
        for path in ("/console/logout", "/console/impact"):
            assert c.post(path, data={"csrf": "x"}).status_code == 403
        r = c.get("/console/devices", cookies={"byod_console": "forged-token"})
        assert r.status_code == 303


def test_help_desk_cannot_reach_it_pages_or_export(env: Env) -> None:
    with env.client() as c:
        sign_in(c, env, "helpdesk1", HD_SEED)
        for path in IT_ONLY_GET:
            r = c.get(path)
            assert r.status_code == 403, path
            assert "user0" not in r.text
        assert c.post("/console/impact", data={"csrf": csrf_of(c)}).status_code == 403
        fleet = c.get("/console/fleet")
        assert fleet.status_code == 200
        assert "user0" not in fleet.text  # figures only: no names in the help desk's fleet
        assert "/console/export.csv" not in fleet.text
        assert env.seeded is not None
        found = c.get(f"/console/lookup?id={env.seeded.cids['user08']}")
        assert found.status_code == 200 and "user08" in found.text  # the caller, to confirm
        assert "/console/devices/" not in found.text
    with env.console.engine.begin() as conn:
        denied = conn.execute(sa.select(audit.c.target).where(audit.c.action == "denied")).all()
    assert {t for (t,) in denied} >= set(IT_ONLY_GET)


def test_csrf_is_enforced_on_every_post(it_client: TestClient, env: Env) -> None:
    for data in ({}, {"csrf": ""}, {"csrf": "not-the-token"}):
        assert it_client.post("/console/logout", data=data).status_code == 403
        r = it_client.post("/console/impact", data=data,
                           files={"policy": ("p.toml", b"x", "application/toml")})
        assert r.status_code == 403
    assert it_client.get("/console/fleet").status_code == 200  # still signed in
    r = it_client.post("/console/logout", data={"csrf": csrf_of(it_client)})
    assert r.status_code == 303
    assert it_client.get("/console/fleet").status_code == 303  # the session is gone


def test_sign_in_form_has_its_own_token(env: Env) -> None:
    with env.client() as c:
        c.get("/console/login")
        r = c.post("/console/login", data={"pre": "forged", "username": "it-admin",
                                          "password": PASSWORD, "code": env.code(IT_SEED)})
        assert r.status_code == 403 and "byod_console=" not in r.headers.get("set-cookie", "")


def test_cookies_are_secure_httponly_strict(env: Env) -> None:
    with env.client() as c:
        c.get("/console/login")
        r = c.post("/console/login", data={
            "pre": c.cookies.get("byod_console_pre"), "username": "it-admin",
            "password": PASSWORD, "code": env.code(IT_SEED)})
        cookie = next(v for k, v in r.headers.multi_items()
                      if k == "set-cookie" and v.startswith("byod_console="))
        low = cookie.lower()
        assert "httponly" in low and "secure" in low and "samesite=strict" in low
        assert "path=/console" in low
        page = c.get("/console/fleet")
        csp = page.headers["content-security-policy"]
        assert "script-src" not in csp and "default-src 'none'" in csp
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-frame-options"] == "DENY"


def test_hostile_report_text_is_shown_not_obeyed(it_client: TestClient, env: Env) -> None:
    assert env.seeded is not None
    for path in (f"/console/lookup?id={env.seeded.cids['user08']}",
                 f"/console/devices/{env.seeded.fps['user08']}"):
        page = it_client.get(path).text
        assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "\u202e" not in page and "&lt;U+202E&gt;gnp.exe" in page
        assert "\x1b" not in page and "\x07" not in page and "&lt;U+001B&gt;[31mRED" in page
    r = it_client.get("/console/lookup?id=%3Cscript%3E")
    assert "<script>" not in r.text


def test_wrong_code_and_replayed_code_are_refused(env: Env) -> None:
    with env.client() as c:
        c.get("/console/login")
        pre = c.cookies.get("byod_console_pre")
        good = env.code(IT_SEED)
        wrong = f"{(int(good) + 1) % 1_000_000:06d}"
        r = c.post("/console/login", data={"pre": pre, "username": "it-admin",
                                          "password": PASSWORD, "code": wrong})
        assert r.status_code == 401 and "正しくありません" in r.text
        c.get("/console/login")
        pre = c.cookies.get("byod_console_pre")
        r = c.post("/console/login", data={"pre": pre, "username": "it-admin",
                                          "password": PASSWORD, "code": good})
        assert r.status_code == 303
    with env.client() as c2:  # the same code again, within its 30 s: refused
        c2.get("/console/login")
        r = c2.post("/console/login", data={"pre": c2.cookies.get("byod_console_pre"),
                                           "username": "it-admin", "password": PASSWORD,
                                           "code": good})
        assert r.status_code == 401


def test_lockout_after_repeated_failures_then_release(env: Env) -> None:
    acc = env.console.accounts
    now = env.clock.now
    for _ in range(4):
        assert acc.sign_in("it-admin", "wrong password!", "000000", now, None)[0].value == "bad"
    assert acc.sign_in("it-admin", "wrong password!", "000000", now, None)[0].value == "locked"
    # locked: even the right password and code are refused, and that is audited
    assert acc.sign_in("it-admin", PASSWORD, env.code(IT_SEED), now + 60, None)[0].value == \
        "locked"
    env.clock.now = now + 15 * 60 + 1
    result, account = acc.sign_in("it-admin", PASSWORD, env.code(IT_SEED), env.clock.now, None)
    assert result.value == "ok" and account is not None
    with env.console.engine.begin() as c:
        actions = [a for (a,) in c.execute(sa.select(audit.c.action).order_by(audit.c.id))]
    assert actions.count("lockout") == 1 and "signin_locked" in actions
    with env.client() as c:  # the page says it is locked, without saying whether names exist
        for _ in range(5):
            c.get("/console/login")
            r = c.post("/console/login", data={"pre": c.cookies.get("byod_console_pre"),
                                              "username": "helpdesk1", "password": "x" * 12,
                                              "code": "123456"})
        assert r.status_code == 401 and "ロック" in r.text
        c.get("/console/login")
        r = c.post("/console/login", data={"pre": c.cookies.get("byod_console_pre"),
                                          "username": "nobody", "password": "x" * 12,
                                          "code": "123456"})
        assert "ロック" not in r.text and "正しくありません" in r.text


def test_sessions_end_when_idle(it_client: TestClient, env: Env) -> None:
    env.clock.now += 31 * 60
    assert it_client.get("/console/fleet").status_code == 303


def test_language_switch_and_accept_language(env: Env) -> None:
    with env.client() as c:
        assert "サインイン" in c.get("/console/login").text
        assert "Sign in" in c.get("/console/login", headers={"accept-language": "en-US"}).text
        r = c.get("/console/login?lang=en")
        assert '<html lang="en">' in r.text
        assert '<html lang="en">' in c.get("/console/login").text  # remembered


def test_export_neutralises_formulas(it_client: TestClient, env: Env) -> None:
    from verifier.console.queries import set_departments

    set_departments(env.console.engine, [("user00", "=HYPERLINK(\"http://x\")"),
                                         ("user01", "+1"), ("user02", "@SUM(A1)")])
    r = it_client.get("/console/export.csv?period=week")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    body = r.text
    assert "'=HYPERLINK" in body and "'+1" in body and "'@SUM" in body
    assert not re.search(r'(^|,)"?[=+@]', body.replace("\r\n", "\n"), re.M)


def test_argon2id_parameters_and_helpers() -> None:
    h = security.hash_password("a long enough password")
    assert h.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PasswordHasher().verify(h, "a long enough password")
    assert security.verify_password(h, "a long enough password")
    assert not security.verify_password(h, "another password!!")
    assert not security.verify_password(None, "anything at all")
    with pytest.raises(ValueError, match="12"):
        security.hash_password("short")
    key = bytes(32)
    sealed = security.seal(key, "SECRET", "totp:a")
    assert "SECRET" not in sealed and security.unseal(key, sealed, "totp:a") == "SECRET"
    assert security.unseal(key, sealed, "totp:b") is None  # bound to its account
    assert security.csv_cell("-2+3") == "'-2+3" and security.csv_cell("ok") == "ok"
    assert security.visible("a\u202eb\x1b[0m") == "a<U+202E>b<U+001B>[0m"


def test_no_plaintext_secret_in_the_database(env: Env) -> None:
    with env.console.engine.begin() as c:
        rows = c.execute(sa.text("SELECT password_hash, totp_secret FROM console_accounts")).all()
    for ph, ts in rows:
        assert ph.startswith("$argon2id$") and PASSWORD not in ph
        assert ts.startswith("v1:") and IT_SEED not in ts and HD_SEED not in ts


def test_large_or_unsized_bodies_are_refused_before_parsing(it_client: TestClient,
                                                            env: Env) -> None:
    csrf = csrf_of(it_client)
    big = b"x" * (3 * 1024 * 1024 + 1)
    r = it_client.post("/console/impact", data={"csrf": csrf},
                       files={"policy": ("p.toml", big, "application/toml")})
    assert r.status_code == 413
    with env.client() as c:
        c.get("/console/login")
        r = c.post("/console/login", content=b"username=" + b"a" * 20_000,
                   headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 413

        def chunks() -> Iterator[bytes]:
            yield b"username=a&password=b"

        r = c.post("/console/login", content=chunks(),
                   headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 413  # no Content-Length: not read at all
