"""The console at city scale: the fleet page's server time against a trivial page of the same app,
and attestation ingestion with the console's ingest hook against the verifier without it and
against a bare endpoint (issue 15).

PostgreSQL 15 is started here (RECIPES.md "PostgreSQL 15 from a root test suite"); the schema is
the real one (``db.upgrade``: the verifier's and the console's migrations, indexes included).
Seeding: 10,000 devices x 96 attestations (one every 15 minutes for a day: 960,000 rows) with
``COPY``; each row's ``checks`` is the JSON the verifier stores for a report decided by the real
code (verifier.evaluate under the demo's signed policy): 90 % compliant, 5 % blocked by disk
encryption, 5 % warned by the screen lock. The console's pre-aggregated tables are written from
the same generated data as its ingest would leave them (newest state per device, per-day rows);
the bench then checks that the fleet page's figures equal a scan of the raw rows.

Timing, in-process through the ASGI app (Starlette TestClient: no network, no TLS, the same for
both sides of each ratio), medians over alternating runs:
- ``console_fleet_vs_trivial``: ``GET /console/fleet`` / ``GET /console/privacy`` (same session
  check, same templates, no fleet query). The raw-scan way of getting the headline figures is
  timed too and printed, to show what the aggregates save.
- ``console_attest_with_ingest_vs_without``: attestations per second (nonce + signed attest, as
  the agent does) through ``verifier.app.build_app`` without the console / with it; 1.0 means the
  hook is free.
- ``console_attest_vs_bare``: the same (with the console) against pairs of ``GET /v1/health``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import Options, Result, Unavailable, median, ratio

KEYS = ("console_fleet_vs_trivial", "console_attest_with_ingest_vs_without",
        "console_attest_vs_bare")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
SETPRIV = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
STEP = 900.0  # one attestation every 15 minutes


@contextmanager
def postgres(base: Path) -> Iterator[str]:
    if not (PG_BIN / "postgres").exists() or shutil.which("setpriv") is None \
            or os.geteuid() != 0:
        raise Unavailable("PostgreSQL 15 (apt postgresql) and root")
    shutil.chown(base, "postgres", "postgres")
    subprocess.run([*SETPRIV, str(PG_BIN / "initdb"), "-D", str(base / "data"), "-U",
                    "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "-N"],
                   check=True, capture_output=True, timeout=120)
    (base / "sock").mkdir()
    shutil.chown(base / "sock", "postgres", "postgres")
    with (base / "pg.log").open("wb") as log:
        proc = subprocess.Popen([*SETPRIV, str(PG_BIN / "postgres"), "-D", str(base / "data"),
                                 "-k", str(base / "sock"), "-c", "listen_addresses=",
                                 "-c", "fsync=off", "-c", "synchronous_commit=off",
                                 "-c", "shared_buffers=256MB"],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", str(base / "sock")],
                             check=False, timeout=10).returncode != 0:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("PostgreSQL did not start: " +
                                   (base / "pg.log").read_text()[-500:])
            time.sleep(0.1)
        subprocess.run([str(PG_BIN / "createdb"), "-h", str(base / "sock"), "-U", "postgres",
                        "bench"], check=True, timeout=30)
        yield f"postgresql+psycopg://postgres@/bench?host={base / 'sock'}"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _report(statuses: dict[str, str], when: dt.datetime) -> dict[str, Any]:
    from agent.posture.model import CHECK_IDS  # noqa: PLC0415

    return {"schema": 1, "agent_version": "0.1.0",
            "generated_at": when.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            "host": {"os": "windows", "os_version": "10.0.22631", "hostname": "pc",
                     "arch": "x86_64"}, "compliant": not statuses,
            "checks": [{"id": c, "status": statuses.get(c, "pass"),
                        "summary": {"ja": "-", "en": "-"}, "summary_key": f"{c}.bench",
                        "evidence": {"source": "bench", "product": "Windows Defender",
                                     "signature_age_days": 0, "build": "22631.4602"},
                        "remediation": None, "duration_ms": 3} for c in CHECK_IDS]}


def seed(url: str, policy: Any, devices: int, per: int, *, now: float,
         zone: zoneinfo.ZoneInfo) -> float:
    """COPY the attestations and the console state; returns the seconds it took."""
    import sqlalchemy as sa  # noqa: PLC0415

    from verifier import evaluate  # noqa: PLC0415
    from verifier.console.ingest import day_of  # noqa: PLC0415

    variants = {}
    when = dt.datetime.fromtimestamp(now, dt.UTC)
    for name, st in (("ok", {}), ("blocked", {"disk_encryption": "fail"}),
                     ("warned", {"screen_lock": "warn"})):
        rep = evaluate.parse_report(_report(st, when))
        d = evaluate.decide_report(rep, policy, when, "BENCH000")
        variants[name] = (json.dumps(evaluate.decision_checks_json(rep, d), ensure_ascii=False,
                                     sort_keys=True), d.allowed,
                          ",".join(c.id for c in d.checks if c.outcome.value == "block"),
                          ",".join(c.id for c in d.checks if c.outcome.value == "warn"))
    start = time.monotonic()
    engine = sa.create_engine(url)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy('COPY attestations (at, "user", cert_fp, policy_id, policy_serial, '
                      "agent_version, target, allowed, correlation_id, checks, refused_code) "
                      "FROM STDIN") as copy:
            for i in range(devices):
                fp = hashlib.sha256(str(i).encode()).hexdigest()
                kind = "blocked" if i % 20 == 0 else "warned" if i % 20 == 1 else "ok"
                checks, allowed, _b, _w = variants[kind]
                for j in range(per):
                    cid = base64.b32encode(secrets.token_bytes(5)).decode()
                    copy.write_row((now - (per - 1 - j) * STEP - (i % 900), f"u{i:05d}", fp,
                                    policy.id, policy.serial, "0.1.0", "office", allowed, cid,
                                    checks, None if allowed else "not_compliant"))
        with cur.copy('COPY console_devices (cert_fp, "user", first_at, last_at, '
                      "last_attestation_id, last_report_id, last_compliant, "
                      "last_correlation_id, agent_version, policy_id, policy_serial, "
                      "cert_not_after, os, blocked, warned) FROM STDIN") as copy:
            for i in range(devices):
                fp = hashlib.sha256(str(i).encode()).hexdigest()
                kind = "blocked" if i % 20 == 0 else "warned" if i % 20 == 1 else "ok"
                _c, _a, blocked, warned = variants[kind]
                last_id = (i + 1) * per  # a fresh serial: COPY order is id order (checked)
                copy.write_row((fp, f"u{i:05d}", now - (per - 1) * STEP - (i % 900),
                                now - (i % 900), last_id, last_id, blocked == "", "BENCH000",
                                "0.1.0", policy.id, policy.serial,
                                now + (i % 400) * 86400.0, "windows", blocked, warned))
        with cur.copy("COPY console_device_days (day, cert_fp, compliant, last_at, "
                      "attestations, allowed_attestations) FROM STDIN") as copy:
            for i in range(devices):
                fp = hashlib.sha256(str(i).encode()).hexdigest()
                kind = "blocked" if i % 20 == 0 else "warned" if i % 20 == 1 else "ok"
                allowed = variants[kind][1]
                days: dict[str, list[float]] = {}
                for j in range(per):
                    at = now - (per - 1 - j) * STEP - (i % 900)
                    days.setdefault(day_of(at, zone), []).append(at)
                for day, ats in days.items():
                    copy.write_row((day, fp, allowed, max(ats), len(ats),
                                    len(ats) if allowed else 0))
        raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
        cur.execute("SELECT max(id), count(*) FROM attestations")
        top, count = cur.fetchone()  # type: ignore[misc]
        if top != count:
            raise RuntimeError("attestation ids are not 1..N: the seeded state would be wrong")
    finally:
        raw.close()
        engine.dispose()
    return time.monotonic() - start


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run(opts: Options) -> Result:
    import sqlalchemy as sa  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import pkcs12  # noqa: PLC0415
    from starlette.testclient import TestClient  # noqa: PLC0415

    from agent.attest import wire  # noqa: PLC0415
    from verifier import db, demo, evaluate, pki  # noqa: PLC0415
    from verifier.app import build_app  # noqa: PLC0415
    from verifier.assign import parse_csv  # noqa: PLC0415
    from verifier.config import load_config  # noqa: PLC0415
    from verifier.console import queries  # noqa: PLC0415
    from verifier.console.accounts import Role  # noqa: PLC0415
    from verifier.console.common import COOKIE  # noqa: PLC0415
    from verifier.console.config import parse_console  # noqa: PLC0415
    from verifier.console.service import Console  # noqa: PLC0415
    from verifier.console.web import build_console_app  # noqa: PLC0415
    from verifier.gateway import Gateway  # noqa: PLC0415
    from verifier.server import _TlsScopeApp  # noqa: PLC0415
    from verifier.service import Verifier  # noqa: PLC0415

    devices, per = opts.pick(10_000, 200), opts.pick(96, 8)
    page_runs, attest_n, rounds = opts.pick(15, 3), opts.pick(200, 10), opts.pick(3, 1)
    rows: list[str] = []
    base = Path(f"/tmp/byod-bench-console-{secrets.token_hex(4)}")
    base.mkdir()
    try:
        with postgres(base) as url:
            lay = demo.layout(base / "city", database_url=url)
            cfg = load_config(lay.config)
            db.upgrade(url)
            now = time.time()
            policy = evaluate.load_server_policy(cfg.policy_file, cfg.trust_dir,
                                                 dt.datetime.now(dt.UTC)).policy
            ccfg = parse_console({}, base)
            took = seed(url, policy, devices, per, now=now, zone=ccfg.zone)
            rows.append(f"seeded {devices} devices x {per} = {devices * per} attestations "
                        f"into PostgreSQL in {took:.1f} s")
            engine = db.make_engine(url)
            console = Console(ccfg, engine, cfg.trust_dir, key=bytes(32))
            console.accounts.add("bench-it", Role.IT, "bench password 123", now)
            acc = console.accounts.by_name("bench-it")
            assert acc is not None
            token = console.accounts.open_session(acc, now)

            fleet = queries.fleet(engine, queries.Filters(), time.time(), ccfg.zone, 7)
            with engine.begin() as c:  # the same two figures from the raw rows
                t0 = time.perf_counter()
                raw_seen, raw_ok = c.execute(sa.text(
                    "SELECT count(*), sum(CASE WHEN allowed THEN 1 ELSE 0 END) FROM "
                    "(SELECT DISTINCT ON (cert_fp) cert_fp, allowed FROM attestations "
                    "WHERE at >= :since ORDER BY cert_fp, at DESC) t"),
                    {"since": time.time() - 86400}).one()
                scan = time.perf_counter() - t0
            if (fleet.in_period, fleet.compliant) != (raw_seen, raw_ok):
                raise RuntimeError(f"aggregates {fleet.in_period}/{fleet.compliant} != raw "
                                   f"{raw_seen}/{raw_ok}")
            rows.append(f"fleet figures = raw scan: {fleet.compliant}/{fleet.in_period} "
                        f"compliant (raw scan for just these two: {scan * 1000:.0f} ms)")

            app = build_console_app(console)
            with TestClient(app, base_url="https://testserver") as client:
                client.cookies.set(COOKIE, token)
                for path in ("/console/fleet", "/console/privacy"):  # warm-up, and status
                    r = client.get(path)
                    if r.status_code != 200:
                        raise RuntimeError(f"{path}: HTTP {r.status_code}")
                f_times, t_times = [], []
                for _ in range(page_runs):
                    f_times.append(timed(lambda: client.get("/console/fleet")))
                    t_times.append(timed(lambda: client.get("/console/privacy")))
            fleet_ms, trivial_ms = median(f_times) * 1000, median(t_times) * 1000
            rows.append(f"fleet page {fleet_ms:.1f} ms, trivial page {trivial_ms:.1f} ms "
                        f"(medians of {page_runs})")

            for a in parse_csv((lay.dir / "users.csv").read_text()):
                db.Store(engine).set_assignment(a)
            store = db.Store(engine)
            # no HAProxy here: admission is the database's (the gateway bench times HAProxy)
            verifier = Verifier(cfg, store, Gateway(dataclasses.replace(cfg.gateway,
                                                                        admin_socket=None)))
            info = lay.users["userA"]
            password = Path(info["password_file"]).read_text().strip().encode()
            key, cert, _ = pkcs12.load_key_and_certificates(Path(info["p12"]).read_bytes(),
                                                            password)
            if not isinstance(key, ec.EllipticCurvePrivateKey) or cert is None:
                raise RuntimeError("demo user key")
            chain = [pki.pem(cert).decode()]

            def attest_rate(client: TestClient) -> float:
                """Includes the console's queued writes: the rate stops after its flush."""
                start = time.perf_counter()
                for _ in range(attest_n):
                    nonce = client.post(wire.NONCE_PATH, content=b'{"v":1}').json()["nonce"]
                    req = wire.AttestRequest(nonce, _report({}, dt.datetime.now(dt.UTC)),
                                             policy.id, policy.serial, "0.1.0", "office",
                                             wire.public_key_pem(key.public_key()))
                    r = client.post(wire.ATTEST_PATH,
                                    content=wire.canonical_json(req.sign(key).to_json()))
                    if r.status_code != 200:
                        raise RuntimeError(f"attest: HTTP {r.status_code} {r.text[:200]}")
                if not console.ingest.flush(120):
                    raise RuntimeError("console ingest did not catch up within 120 s")
                return attest_n / (time.perf_counter() - start)

            def bare_rate(client: TestClient) -> float:
                start = time.perf_counter()
                for _ in range(attest_n):
                    client.get("/v1/health")
                    client.get("/v1/health")
                return attest_n / (time.perf_counter() - start)

            plain = _TlsScopeApp(build_app(verifier, enforce=False), chain)
            hooked = _TlsScopeApp(build_app(verifier, enforce=False, console=console), chain)
            with_c, without_c, bare = [], [], []
            with TestClient(plain, base_url="https://testserver") as pc, \
                    TestClient(hooked, base_url="https://testserver") as hc:
                attest_rate(pc)  # warm-up
                for _ in range(rounds):
                    without_c.append(attest_rate(pc))
                    with_c.append(attest_rate(hc))
                    bare.append(bare_rate(hc))
            w, wo, b = median(with_c), median(without_c), median(bare)
            rows.append(f"attest/s: with console ingest {w:.1f}, without {wo:.1f}; bare "
                        f"health pairs/s {b:.1f} (medians of {rounds} x {attest_n})")
            engine.dispose()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return Result("console", {"console_fleet_vs_trivial": ratio(fleet_ms, trivial_ms),
                              "console_attest_with_ingest_vs_without": ratio(w, wo),
                              "console_attest_vs_bare": ratio(w, b)}, rows)


if __name__ == "__main__":
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__)
    ap.add_argument("--quick", action="store_true")
    res = run(Options(quick=ap.parse_args().quick))
    for row in res.rows:
        print(row)
    print(json.dumps(res.ratios))
    sys.exit(0)
