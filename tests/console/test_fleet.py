"""The fleet figures, device page, look-up and impact preview over a seeded fleet (tests/console/
seed.py), on SQLite and on a real PostgreSQL 15; and the real ingest path through verifier/app.py.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from starlette.testclient import TestClient

from agent.attest import wire
from tests.console.conftest import Env
from tests.console.seed import report
from verifier import demo, pki
from verifier.app import build_app
from verifier.assign import parse_csv
from verifier.config import load_config
from verifier.console import impact, queries
from verifier.console.ingest import day_of
from verifier.console.tables import audit, device_days, devices, report_extras
from verifier.gateway import Gateway
from verifier.server import _TlsScopeApp
from verifier.service import Verifier

DRAFT = demo.policy_text(3).encode()  # every check blocks, screen_lock too


def figures(env: Env, **kw: object) -> queries.Fleet:
    return queries.fleet(env.console.engine, queries.Filters(**kw),  # type: ignore[arg-type]
                         env.clock.now, env.console.cfg.zone, 7)


def test_fleet_counts_of_the_seeded_fleet(env_any: Env) -> None:
    day = figures(env_any)
    assert (day.total, day.seen_day, day.seen_week) == (12, 10, 11)
    assert (day.in_period, day.compliant, day.compliant_percent) == (10, 8, 80)
    assert day.top_failing == [("disk_encryption", 2)]
    assert (day.expiring, day.not_seen) == (2, 1)
    assert day.agent_versions == [("0.1.0", 10)]
    assert day.policy_serials == [("demo-verifier / 2", 10)]
    week = figures(env_any, period_days=7)
    assert (week.in_period, week.compliant) == (11, 8)
    assert dict(week.top_failing) == {"disk_encryption": 2, "antivirus": 1, "firewall": 1}
    assert dict(week.agent_versions) == {"0.1.0": 10, "0.0.9": 1}
    assert len(day.trend) == 30
    assert day.trend[-1]["day"] == day_of(env_any.clock.now, env_any.console.cfg.zone)


def test_filters(env_any: Env) -> None:
    e, now = env_any.console.engine, env_any.clock.now
    users = {r["user"] for r in queries.device_list(e, queries.Filters(check="disk_encryption"),
                                                     now)}
    assert users == {"user08", "user09"}
    assert {r["user"] for r in queries.device_list(
        e, queries.Filters(period_days=7, check="firewall"), now)} == {"user10"}
    tax = queries.device_list(e, queries.Filters(department="税務課"), now)
    assert {r["user"] for r in tax} == {"user06", "user07", "user08", "user09"}
    assert len(queries.device_list(e, queries.Filters(compliant=False), now)) == 2
    assert queries.fleet(e, queries.Filters(agent_version="0.0.9", period_days=7), now,
                         env_any.console.cfg.zone, 7).in_period == 1
    assert [r["user"] for r in queries.expiring_certs(e, now)] == ["user00", "user01"] or \
        {r["user"] for r in queries.expiring_certs(e, now)} == {"user00", "user01"}
    assert [r["user"] for r in queries.not_seen(e, now, 7)] == ["user11"]


def test_trend_roll_up_closes_days(env_any: Env) -> None:
    e, zone = env_any.console.engine, env_any.console.cfg.zone
    before = queries.fleet(e, queries.Filters(), env_any.clock.now, zone, 7).trend
    assert queries.roll_up(e, env_any.clock.now, zone) >= 1
    after = queries.fleet(e, queries.Filters(), env_any.clock.now, zone, 7).trend
    assert before == after  # closed days read from console_daily give the same numbers
    assert queries.roll_up(e, env_any.clock.now, zone) == 0  # idempotent
    with e.begin() as c:
        n = c.execute(sa.select(sa.func.count()).select_from(device_days)).scalar()
    assert n == sum(d["devices"] for d in after)


def test_impact_preview_by_check_and_department(env_any: Env) -> None:
    draft = impact.parse_draft(DRAFT, None, env_any.console.trust_dir)
    assert draft.signed_by is None and draft.signature_problem is None
    result = impact.preview(env_any.console.engine, draft.policy, dt.datetime.now(dt.UTC))
    assert (result.would_block, result.total, result.no_report) == (6, 12, 0)
    assert dict(result.by_check) == {"screen_lock": 3, "disk_encryption": 2, "antivirus": 1,
                                     "firewall": 1}
    assert result.by_department == {"総務課": [1, 6], "税務課": [5, 6]}
    # the policy in force, replayed, blocks exactly what it blocked
    current = impact.preview(env_any.console.engine, env_any.policy, dt.datetime.now(dt.UTC))
    assert (current.would_block, current.would_warn) == (3, 3)


def test_impact_signature_is_checked_when_sent(env: Env) -> None:
    signed = env.lay.dir / "policy" / "policy.toml"
    data = signed.read_bytes()
    sig = (env.lay.dir / "policy" / "policy.toml.sig").read_bytes()
    assert impact.parse_draft(data, sig, env.console.trust_dir).signed_by is not None
    bad = impact.parse_draft(data + b"\n# edited", sig, env.console.trust_dir)
    assert bad.signed_by is None and bad.signature_problem


def test_pages_show_the_figures(it_client: TestClient, env: Env) -> None:
    r = it_client.get("/console/fleet")
    assert r.status_code == 200
    tiles = dict(re.findall(r'<dd id="tile-([a-z-]+)">\s*([^<\s]+)', r.text))
    assert tiles == {"seen-day": "10", "seen-week": "11", "compliant": "80%", "expiring": "2",
                     "not-seen": "1", "total": "12"}
    r = it_client.post("/console/impact", data={"csrf": _csrf(it_client)},
                       files={"policy": ("draft.toml", DRAFT, "application/toml")})
    assert r.status_code == 200, r.text[:300]
    assert "12 台中 6 台が接続できなくなります" in r.text


def _csrf(client: TestClient) -> str:
    page = client.get("/console/impact").text
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m
    return m.group(1)


def test_device_page_and_lookup_are_audited(it_client: TestClient, env: Env) -> None:
    assert env.seeded is not None
    fp = env.seeded.fps["user00"]
    r = it_client.get(f"/console/devices/{fp}")
    assert r.status_code == 200
    assert r.text.count('<article class="card"') == 3  # three reports, newest first
    cid = env.seeded.cids["user08"]
    r = it_client.get(f"/console/lookup?id={cid.lower()}")
    assert r.status_code == 200
    assert f'<code id="found-cid">{cid}</code>' in r.text
    assert "利用者に表示された直し方" in r.text and "再インストール" in r.text  # linux steps
    with env.console.engine.begin() as c:
        rows = c.execute(sa.select(audit.c.action, audit.c.target, audit.c.actor)
                         .order_by(audit.c.id)).all()
    assert ("device_view", fp, "it-admin") in rows
    assert ("lookup", cid, "it-admin") in rows


def test_real_ingest_through_the_verifier_app(tmp_path: Path, database_url: str) -> None:
    from tests.console.conftest import make_env

    env = make_env(tmp_path, database_url, seed_fleet=False)
    cfg = load_config(env.lay.config)
    for a in parse_csv((env.lay.dir / "users.csv").read_text()):
        env.store.set_assignment(a)
    verifier = Verifier(cfg, env.store, Gateway(cfg.gateway))
    info = env.lay.users["userA"]
    password = Path(info["password_file"]).read_text().strip().encode()
    key, cert, _ = pkcs12.load_key_and_certificates(Path(info["p12"]).read_bytes(), password)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and cert is not None
    app = _TlsScopeApp(build_app(verifier, enforce=False, console=env.console),
                       [pki.pem(cert).decode()])
    with TestClient(app, base_url="https://testserver") as client:
        for statuses in ({"disk_encryption": "fail"}, {}):
            nonce = client.post(wire.NONCE_PATH, content=b'{"v":1}').json()["nonce"]
            doc = report(statuses, generated_at=dt.datetime.now(dt.UTC))
            for c in doc["checks"]:
                if c["status"] == "fail":
                    c["remediation"] = {"key": "disk_encryption.linux"}
            req = wire.AttestRequest(nonce, doc, demo.POLICY_ID, 2, "0.1.0", "office",
                                     wire.public_key_pem(key.public_key()))
            r = client.post(wire.ATTEST_PATH, content=wire.canonical_json(req.sign(key).to_json()))
            assert r.status_code == (403 if statuses else 200), r.text
            if statuses:
                refused_cid = r.json()["correlation_id"]
    assert env.console.ingest.flush(10)  # the writer thread folds the queue in batches
    with env.console.engine.begin() as c:
        d = c.execute(sa.select(devices)).one()
        extra = c.execute(sa.select(report_extras)
                          .where(report_extras.c.correlation_id == refused_cid)).one()
        day = c.execute(sa.select(device_days)).one()
    assert d.user == "userA" and d.last_compliant and d.blocked == ""
    assert d.cert_not_after == cert.not_valid_after_utc.timestamp()
    assert extra.os == "linux" and "disk_encryption.linux" in extra.remediation
    assert (day.attestations, day.allowed_attestations, day.compliant) == (2, 1, True)


def test_a_full_queue_writes_in_the_callers_thread(env: Env) -> None:
    from verifier.console.ingest import Ingest

    ingest = Ingest(env.console.engine, env.console.cfg.zone, max_queue=1, batch_seconds=5)
    assert env.seeded is not None
    cids = [env.seeded.cids[u] for u in ("user03", "user04", "user05")]
    for cid in cids:  # the first waits in the queue; the others find it full and write now
        ingest.after_attest(None, b"{}", "ok", {"correlation_id": cid})
    assert ingest.flush(10)
    ingest.after_attest(None, b"{}", "ok", {})  # no 判定ID: nothing to fold
    assert ingest.flush(1)
    fps = [env.seeded.fps[u] for u in ("user03", "user04", "user05")]
    with env.console.engine.begin() as c:  # each folded once more (seeding folded it first)
        counts = c.execute(sa.select(device_days.c.attestations)
                           .where(device_days.c.cert_fp.in_(fps))).scalars().all()
    assert counts == [2, 2, 2]


def test_no_fix_steps_are_made_up(it_client: TestClient, env: Env) -> None:
    """Steps come only from the key the agent reported: without it the page shows none."""
    assert env.seeded is not None
    cid = env.seeded.cids["user09"]
    assert "利用者に表示された直し方" in it_client.get(f"/console/lookup?id={cid}").text
    with env.console.engine.begin() as c:
        c.execute(report_extras.delete().where(report_extras.c.correlation_id == cid))
    page = it_client.get(f"/console/lookup?id={cid}").text
    assert f'<code id="found-cid">{cid}</code>' in page
    assert "利用者に表示された直し方" not in page
