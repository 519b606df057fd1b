"""Retention deletes exactly the attestations older than the period (and what the console derived
from them), on SQLite and PostgreSQL; the privacy list is the real schema."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from starlette.testclient import TestClient

from tests.console.conftest import Env, make_env
from tests.console.seed import DAY, Spec, record
from verifier.console import retention
from verifier.console.privacy import STORED
from verifier.console.tables import devices, report_extras
from verifier.db import attestations


def test_retention_deletes_exactly_what_is_older(tmp_path: Path, database_url: str) -> None:
    env = make_env(tmp_path, database_url, seed_fleet=False)
    now = env.clock.now
    period = 90
    cut = now - period * DAY
    ages = {"old2": cut - 3600, "old1": cut - 0.5, "edge": cut, "new1": cut + 0.5,
            "new2": now - 60}
    for n, (user, at) in enumerate(ages.items()):
        cid = record(env.store, env.console, env.policy, Spec(user, {}, 0), at, fp=f"{n:064x}")
        env.store.record_credential(f"{n:x}", user, "pcA", issued_at=at, not_after=at + 600,
                                    correlation_id=cid)
    result = retention.run(env.console.engine, now, period, batch=1)  # batches of one
    assert result.attestations == 2 and result.cutoff == cut and result.credentials == 2
    assert {c["user"] for u in ages for c in env.store.credentials_for(u)} == {
        "edge", "new1", "new2"}
    with env.console.engine.begin() as c:
        kept = {r.user for r in c.execute(sa.select(attestations.c.user))}
        kept_devices = {r.user for r in c.execute(sa.select(devices.c.user))}
        extras = c.execute(sa.select(sa.func.count()).select_from(report_extras)).scalar()
    assert kept == {"edge", "new1", "new2"}  # at == cutoff is not older: kept
    assert kept_devices == {"edge", "new1", "new2"}
    assert result.devices == 2
    assert extras == 3
    assert retention.run(env.console.engine, now, period).attestations == 0  # idempotent


def test_retention_clears_a_dangling_newest_report(tmp_path: Path) -> None:
    env = make_env(tmp_path, f"sqlite:///{tmp_path / 'v.sqlite3'}", seed_fleet=False)
    now = env.clock.now
    record(env.store, env.console, env.policy, Spec("u1", {}, 0), now - 100 * DAY, fp="a" * 64)
    with env.console.engine.begin() as c:  # a refusal since, with no report: last_at is recent
        c.execute(devices.update().values(last_at=now - 60))
    retention.run(env.console.engine, now, 90)
    with env.console.engine.begin() as c:
        row = c.execute(sa.select(devices)).one()
    assert row.last_report_id is None


def test_the_privacy_list_is_the_stored_schema(env_any: Env) -> None:
    insp = sa.inspect(env_any.console.engine)
    real = {(t, c["name"]) for t in insp.get_table_names() if t != "alembic_version"
            for c in insp.get_columns(t)}
    listed = {(s.table, c) for s in STORED for c in s.columns}
    assert real - listed == set(), "stored but not on the privacy page"
    assert listed - real == set(), "on the privacy page but not stored"
    for s in STORED:
        assert set(s.personal) <= set(s.columns), s.table


def test_privacy_page_lists_every_table(it_client: TestClient) -> None:
    page = it_client.get("/console/privacy").text
    for s in STORED:
        assert f"<code>{s.table}</code>" in page
        for col in s.columns:
            assert f">{col}</code>" in page
    assert "90 日を過ぎると自動的に削除" in page
