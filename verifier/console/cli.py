"""``byod-verifier console``, ``user add``, ``retention run``, ``departments import``,
``console rebuild`` (docs/console.md). verifier/cli.py registers them."""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import logging
import ssl
import sys
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn

from verifier import db
from verifier.config import VerifierConfig
from verifier.console import queries, retention, security
from verifier.console.accounts import USERNAME_RE, Role
from verifier.console.config import console_config
from verifier.console.service import Console

log = logging.getLogger("verifier.console")


def make_console(cfg: VerifierConfig, engine: object | None = None) -> Console:
    ccfg = console_config(cfg)
    eng = engine if engine is not None else db.make_engine(cfg.database_url)
    oidc = None
    if ccfg.oidc is not None:
        from verifier.console.oidc import OidcClient  # noqa: PLC0415 (only with an IdP)
        oidc = OidcClient(ccfg.oidc)
    return Console(ccfg, eng, cfg.trust_dir, oidc=oidc)  # type: ignore[arg-type]


def cmd_console(cfg: VerifierConfig, _args: argparse.Namespace) -> int:
    from verifier.console.web import build_console_app  # noqa: PLC0415

    db.upgrade(cfg.database_url)
    console = make_console(cfg)
    c = console.cfg
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    cert, key = c.tls_cert or cfg.tls_cert, c.tls_key or cfg.tls_key
    ctx.load_cert_chain(str(cert), str(key))
    config = uvicorn.Config(build_console_app(console), host=c.listen_host, port=c.listen_port,
                            lifespan="on", log_config=None, access_log=False,
                            server_header=False, ssl_certfile=str(cert), ssl_keyfile=str(key),
                            ssl_context_factory=lambda _c, _d: ctx, timeout_keep_alive=30)
    log.info("console listening on https://%s:%d/console/", c.listen_host, c.listen_port)
    uvicorn.Server(config).run()
    return 0


def cmd_user_add(cfg: VerifierConfig, args: argparse.Namespace) -> int:
    db.upgrade(cfg.database_url)
    ccfg = console_config(cfg)
    if not USERNAME_RE.fullmatch(args.name):
        raise ValueError("user name: letters, digits and ._@- only, at most 64")
    if args.oidc_subject:
        console = make_console(cfg)
        console.accounts.add(args.name, Role(args.role), None, time.time(),
                             oidc_subject=args.oidc_subject)
        print(f"account {args.name} ({args.role}) for the IdP subject added")
        return 0
    if ccfg.key_file is not None and not ccfg.key_file.exists():
        security.create_key_file(ccfg.key_file)
        print(f"created the console key file {ccfg.key_file} (keep it with the database backup)")
    console = make_console(cfg)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password (12 characters or more): ")
        if getpass.getpass("again: ") != password:
            raise ValueError("the two passwords differ")
    secret = console.accounts.add(args.name, Role(args.role), password, time.time())
    assert secret is not None  # noqa: S101 (a local account always gets one)
    print(f"account {args.name} ({args.role}) added. Enrol this in the authenticator app now;")
    print("it is shown once and stored only encrypted:")
    print(f"  secret: {secret}")
    print(f"  uri:    {security.totp_uri(secret, args.name)}")
    return 0


def cmd_retention(cfg: VerifierConfig, args: argparse.Namespace) -> int:
    db.upgrade(cfg.database_url)
    console = make_console(cfg)
    days = args.days or console.cfg.retention_days
    queries.roll_up(console.engine, time.time(), console.cfg.zone)
    r = retention.run(console.engine, time.time(), days)
    console.accounts.record(time.time(), "byod-verifier", None, "retention",
                            f"{r.attestations} older than {days} d", ok=True, client=None)
    print(f"deleted {r.attestations} attestations, {r.extras} report extras, {r.credentials} "
          f"credentials and {r.devices} devices older than {days} days")
    return 0


def cmd_departments(cfg: VerifierConfig, args: argparse.Namespace) -> int:
    db.upgrade(cfg.database_url)
    text = Path(args.csv).read_text(encoding="utf-8").removeprefix("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip().lower() for c in rows[0]] != ["user", "department"]:
        raise ValueError("the first line must be: user,department")
    out: list[tuple[str, str]] = []
    for n, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 2 or not USERNAME_RE.fullmatch(row[0].strip()) \
                or not 0 < len(row[1].strip()) <= 64:
            raise ValueError(f"line {n}: expected user,department (department 1-64 chars)")
        out.append((row[0].strip(), security.visible(row[1].strip())))
    console = make_console(cfg)
    print(f"{queries.set_departments(console.engine, out)} departments imported")
    return 0


def cmd_rebuild(cfg: VerifierConfig, _args: argparse.Namespace) -> int:
    db.upgrade(cfg.database_url)
    console = make_console(cfg)
    n = console.ingest.rebuild()
    queries.roll_up(console.engine, time.time(), console.cfg.zone)
    print(f"fleet figures rebuilt from {n} attestations")
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                wc: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]) -> None:
    """``wc``: verifier/cli.py's helper that adds --config."""
    cp = sub.add_parser("console", help="the IT and help-desk web console")
    csub = cp.add_subparsers(dest="console_cmd")
    cp.add_argument("--config", help="verifier.toml")
    cp.set_defaults(fn=cmd_console)
    wc(csub.add_parser("serve", help="serve the console (the default)")).set_defaults(
        fn=cmd_console)
    wc(csub.add_parser("rebuild", help="recompute the fleet figures from the attestations")
       ).set_defaults(fn=cmd_rebuild)
    up = sub.add_parser("user", help="console accounts")
    usub = up.add_subparsers(dest="user_cmd", required=True)
    add = wc(usub.add_parser("add", help="add a console account"))
    add.add_argument("name")
    add.add_argument("--role", choices=[r.value for r in Role], required=True)
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of stdin")
    add.add_argument("--oidc-subject", help="an IdP account (no password, no TOTP)")
    add.set_defaults(fn=cmd_user_add)
    rp = sub.add_parser("retention", help="delete attestations past the retention period")
    rsub = rp.add_subparsers(dest="retention_cmd", required=True)
    run = wc(rsub.add_parser("run"))
    run.add_argument("--days", type=int, help="override [console] retention_days")
    run.set_defaults(fn=cmd_retention)
    dp = sub.add_parser("departments", help="user -> department, for the impact preview")
    dsub = dp.add_subparsers(dest="departments_cmd", required=True)
    imp = wc(dsub.add_parser("import", help="import a user,department CSV"))
    imp.add_argument("csv")
    imp.set_defaults(fn=cmd_departments)
