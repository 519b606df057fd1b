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


def test_byod_verifier_console_serves_https(tmp_path: Path) -> None:
    """The real command: uvicorn with the configured certificate, no client certificate asked."""
    import subprocess

    import httpx

    from verifier import demo

    env = make_env(tmp_path, f"sqlite:///{tmp_path / 'v.sqlite3'}", seed_fleet=False)
    port = demo.free_port()
    text = env.lay.config.read_text(encoding="utf-8")
    env.lay.config.write_text(text + f'\n[console]\nlisten = "127.0.0.1:{port}"\n'
                              f'key_file = "{tmp_path / "k.key"}"\n', encoding="utf-8")
    log = (tmp_path / "console.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "verifier", "console", "--config",
                             str(env.lay.config)], stdout=log, stderr=subprocess.STDOUT,
                            env=demo.python_env())
    try:
        demo.wait_port(port, 30, proc, "byod-verifier console")
        ca = str(env.lay.dir / "city-ca.pem")
        r = httpx.get(f"https://localhost:{port}/console/login", verify=ca, timeout=10)
        assert r.status_code == 200 and "サインイン" in r.text
        assert "secure" in r.headers["set-cookie"].lower()
        r = httpx.get(f"https://localhost:{port}/console/fleet", verify=ca, timeout=10)
        assert r.status_code == 303
    finally:
        demo.stop_process(proc)
        log.close()


def test_the_console_can_be_mounted_in_the_verifier(tmp_path: Path) -> None:
    import dataclasses

    from starlette.testclient import TestClient

    from verifier.app import build_app
    from verifier.config import load_config
    from verifier.console.service import Console
    from verifier.gateway import Gateway
    from verifier.service import Verifier

    env = make_env(tmp_path, f"sqlite:///{tmp_path / 'v.sqlite3'}", seed_fleet=False)
    cfg = load_config(env.lay.config)
    mounted = Console(dataclasses.replace(env.console.cfg, mount_in_verifier=True),
                      env.console.engine, cfg.trust_dir, clock=env.clock)
    app = build_app(Verifier(cfg, env.store, Gateway(cfg.gateway)), enforce=False,
                    console=mounted)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        assert c.get("/console/login").status_code == 200
        assert c.get("/console/fleet").status_code == 303
        assert c.get("/v1/health").json()["status"] == "ok"
