"""``byod-verifier user add``, ``retention run``, ``departments import``, ``console rebuild`` on a
demo city's real configuration, and the console's scheduled job (the asyncio task in its app)."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.console.conftest import make_env
from tests.console.seed import DAY, Spec, record
from verifier import cli
from verifier.console.tables import accounts, departments, devices
from verifier.db import attestations


def _with_console_table(config: Path, tmp: Path) -> None:
    text = config.read_text(encoding="utf-8")
    config.write_text(text + f'\n[console]\nkey_file = "{tmp / "cli-console.key"}"\n'
                      'retention_days = 30\n', encoding="utf-8")


def test_user_add_retention_departments_rebuild(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    env = make_env(tmp_path, f"sqlite:///{tmp_path / 'v.sqlite3'}", seed_fleet=False)
    _with_console_table(env.lay.config, tmp_path)
    cfg = str(env.lay.config)
    monkeypatch.setattr(sys, "stdin", io.StringIO("a very long password\n"))
    assert cli.main(["user", "add", "yamada", "--role", "helpdesk", "--password-stdin",
                     "--config", cfg]) == 0
    out = capsys.readouterr().out
    assert "otpauth://totp/" in out and (tmp_path / "cli-console.key").stat().st_mode & 0o077 == 0
    with env.console.engine.begin() as c:
        row = c.execute(sa.select(accounts).where(accounts.c.username == "yamada")).one()
    assert row.role == "helpdesk" and row.password_hash.startswith("$argon2id$")
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert cli.main(["user", "add", "sato", "--role", "it", "--password-stdin",
                     "--config", cfg]) == 2  # a too-short password is a usage error
    now = time.time()
    record(env.store, env.console, env.policy, Spec("old", {}, 0), now - 31 * DAY, fp="1" * 64)
    record(env.store, env.console, env.policy, Spec("new", {}, 0), now - 60, fp="2" * 64)
    assert cli.main(["retention", "run", "--config", cfg]) == 0
    assert "deleted 1 attestations" in capsys.readouterr().out
    csv_file = tmp_path / "dept.csv"
    csv_file.write_text("user,department\nnew,総務課\n", encoding="utf-8")
    assert cli.main(["departments", "import", str(csv_file), "--config", cfg]) == 0
    csv_file.write_text("user,dept\n", encoding="utf-8")
    assert cli.main(["departments", "import", str(csv_file), "--config", cfg]) == 2
    with env.console.engine.begin() as c:
        c.execute(devices.delete())
    assert cli.main(["console", "rebuild", "--config", cfg]) == 0
    with env.console.engine.begin() as c:
        assert [r.user for r in c.execute(sa.select(devices))] == ["new"]
        assert c.execute(sa.select(departments.c.department)).scalar() == "総務課"
    assert cli.main(["console"]) == 2  # no --config


def test_the_app_runs_the_retention_job(tmp_path: Path) -> None:
    env = make_env(tmp_path, f"sqlite:///{tmp_path / 'v.sqlite3'}", seed_fleet=False)
    record(env.store, env.console, env.policy, Spec("old", {}, 0), env.clock.now - 91 * DAY,
           fp="1" * 64)
    with env.client():  # lifespan starts the job task
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with env.console.engine.begin() as c:
                if c.execute(sa.select(sa.func.count()).select_from(attestations)).scalar() == 0:
                    break
            time.sleep(0.05)
        else:
            raise AssertionError("the job did not delete the old attestation within 10 s")
