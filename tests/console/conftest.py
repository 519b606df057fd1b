"""Fixtures for the console: a demo city's database (SQLite, and PostgreSQL where asked), the
console with a settable clock, two accounts (IT, help desk) with known TOTP seeds, a seeded fleet.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from starlette.testclient import TestClient

from agent.policy.model import Policy
from tests.console import seed as seeding
from tests.verifier.conftest import database_url, postgres  # noqa: F401 (fixtures)
from verifier import db, demo, evaluate
from verifier.config import load_config
from verifier.console.accounts import Role
from verifier.console.config import parse_console
from verifier.console.service import Console
from verifier.console.web import build_console_app

PASSWORD = "correct horse battery staple"
IT_SEED = pyotp.random_base32()
HD_SEED = pyotp.random_base32()
CURRENT_POLICY = demo.policy_text(2).replace(
    '[checks.screen_lock]\nenforce = "block"', '[checks.screen_lock]\nenforce = "warn"')


@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now


@dataclass
class Env:
    lay: demo.Layout
    store: db.Store
    console: Console
    clock: Clock
    policy: Policy
    seeded: seeding.Seeded | None = None

    def client(self) -> TestClient:
        return TestClient(build_console_app(self.console), base_url="https://testserver",
                          follow_redirects=False)

    def code(self, seed: str, offset: int = 0) -> str:
        return pyotp.TOTP(seed).at(self.clock.now + offset)


def make_env(tmp: Path, url: str, *, seed_fleet: bool = True) -> Env:
    lay = demo.layout(tmp / "city", database_url=url)
    demo.sign_policy(lay.dir, CURRENT_POLICY)  # screen_lock only warns today
    cfg = load_config(lay.config)
    db.upgrade(cfg.database_url)
    store = db.Store(db.make_engine(cfg.database_url))
    now = time.time()
    clock = Clock(now)
    key_file = tmp / "console.key"
    from verifier.console.security import create_key_file

    create_key_file(key_file)
    ccfg = parse_console({"key_file": str(key_file), "lockout_failures": 5,
                          "lockout_minutes": 15}, tmp)
    console = Console(ccfg, store.engine, cfg.trust_dir, clock=clock)
    console.accounts.add("it-admin", Role.IT, PASSWORD, now, totp_secret=IT_SEED)
    console.accounts.add("helpdesk1", Role.HELPDESK, PASSWORD, now, totp_secret=HD_SEED)
    policy = evaluate.load_server_policy(cfg.policy_file, cfg.trust_dir,
                                         dt.datetime.now(dt.UTC)).policy
    env = Env(lay, store, console, clock, policy)
    if seed_fleet:
        env.seeded = seeding.seed(store, console, policy, now)
    return env


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return make_env(tmp_path, f"sqlite:///{tmp_path / 'v.sqlite3'}")


@pytest.fixture
def env_any(tmp_path: Path, database_url: str) -> Env:  # noqa: F811 (the fixture above)
    return make_env(tmp_path, database_url)


def sign_in(client: TestClient, env: Env, user: str = "it-admin", seed: str = IT_SEED,
            *, offset: int = 0) -> TestClient:
    r = client.get("/console/login")
    pre = client.cookies.get("byod_console_pre")
    r = client.post("/console/login", data={"pre": pre, "username": user, "password": PASSWORD,
                                           "code": env.code(seed, offset)})
    assert r.status_code == 303, r.text[:500]
    return client


@pytest.fixture
def it_client(env: Env) -> Iterator[TestClient]:
    with env.client() as c:
        yield sign_in(c, env)
