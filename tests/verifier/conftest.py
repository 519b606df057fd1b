"""Fixtures for the verifier suite: the database (helpers live in testkit/verifier.py).

Every database test runs twice: on SQLite and on a real PostgreSQL 15 started here as the
``postgres`` user (RECIPES.md "PostgreSQL 15 from a root test suite").
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import require

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SETPRIV = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


# -- PostgreSQL --------------------------------------------------------------------------------

@dataclass
class Postgres:
    base: Path
    proc: subprocess.Popen[bytes]

    @property
    def sock(self) -> Path:
        return self.base / "sock"

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://postgres@/{db}?host={self.sock}"

    def new_database(self) -> str:
        name = "t_" + secrets.token_hex(6)
        engine = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    require((PG_BIN / "postgres").exists() and shutil.which("setpriv") is not None
            and os.geteuid() == 0, "PostgreSQL 15 (apt postgresql) and root")
    base = Path(tempfile.mkdtemp(prefix="byodpg-", dir="/tmp"))  # not pytest's 0700 tmp
    shutil.chown(base, "postgres", "postgres")
    subprocess.run([*SETPRIV, str(PG_BIN / "initdb"), "-D", str(base / "data"), "-U", "postgres",
                    "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "-N"], check=True,
                   capture_output=True, timeout=120)
    (base / "sock").mkdir()
    shutil.chown(base / "sock", "postgres", "postgres")
    log = (base / "postgres.log").open("wb")
    proc = subprocess.Popen([*SETPRIV, str(PG_BIN / "postgres"), "-D", str(base / "data"),
                             "-k", str(base / "sock"), "-c", "listen_addresses=",
                             "-c", "fsync=off", "-c", "synchronous_commit=off"],
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    pg = Postgres(base, proc)
    try:
        for _ in range(200):  # bounded: 20 s
            ready = subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", str(pg.sock)],
                                   check=False, timeout=10)
            if ready.returncode == 0:
                break
            if proc.poll() is not None:
                raise RuntimeError((base / "postgres.log").read_text()[-2000:])
            time.sleep(0.1)
        else:
            raise TimeoutError("PostgreSQL not ready after 20 s")
        yield pg
    finally:
        proc.send_signal(2)  # SIGINT: fast shutdown (SIGTERM waits for clients)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'verifier.sqlite3'}"
    pg: Postgres = request.getfixturevalue("postgres")
    return pg.new_database()
