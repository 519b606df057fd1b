"""Fixtures for the verifier suite: the demo layout, identities, reports, and the database.

Every database test runs twice: on SQLite and on a real PostgreSQL 15 started here as the
``postgres`` user (RECIPES.md "PostgreSQL 15 from a root test suite").
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from agent.keystore import Identity
from agent.keystore.certs import CertInfo
from agent.posture.model import CHECK_IDS
from tests.conftest import require
from verifier import pki
from verifier.demo import Layout

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SETPRIV = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


def report(statuses: dict[str, str] | None = None, *, generated_at: dt.datetime | None = None,
           compliant: bool = True, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A `byod-agent check --json` report (docs/report-schema.md); every check passes unless
    ``statuses`` says otherwise."""
    when = (generated_at or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    statuses = statuses or {}
    return {
        "schema": 1, "agent_version": "0.1.0",
        "generated_at": when.isoformat().replace("+00:00", "Z"),
        "host": {"os": "linux", "os_version": "Debian 12", "hostname": "home-pc", "arch": "x86_64"},
        "compliant": compliant,
        "checks": [{"id": c, "status": statuses.get(c, "pass"),
                    "summary": {"ja": "テスト", "en": "test"}, "summary_key": f"{c}.test",
                    "evidence": {"source": "test"}, "remediation": None, "duration_ms": 1}
                   for c in CHECK_IDS if c not in drop],
    }


@dataclass(frozen=True)
class User:
    name: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    identity: Identity

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def load_user(lay: Layout, name: str, work: Path) -> User:
    info = lay.users[name]
    password = Path(info["password_file"]).read_text(encoding="utf-8").strip().encode()
    key, cert, _ = pkcs12.load_key_and_certificates(Path(info["p12"]).read_bytes(), password)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and cert is not None
    passphrase = secrets.token_urlsafe(16).encode()
    cert_path, key_path = work / f"{name}.crt", work / f"{name}.enc.key"
    cert_path.write_bytes(pki.pem(cert))
    pki.write_private(key_path, pki.key_pem(key, passphrase))  # encrypted, as the keystore keeps it
    return User(name, cert, key, Identity(cert_path, key_path, passphrase, CertInfo.of(cert)))


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
