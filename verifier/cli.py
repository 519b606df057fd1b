"""``byod-verifier``: serve, db upgrade, assign ..., gateway render, demo (docs/verifier.md);
console, user add, retention run, departments import (docs/console.md).

Exit codes: 0 done, 2 usage or configuration error, 1 anything else (message on stderr, the
traceback only in the log).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from agent.core import exitcodes, i18n
from agent.core.errors import AgentError
from verifier import db
from verifier.app import build_app
from verifier.assign import AssignmentError, check, parse_csv, to_csv
from verifier.config import ConfigError, VerifierConfig, load_config
from verifier.console.cli import add_parsers as add_console_parsers
from verifier.console.cli import make_console
from verifier.demo import run_demo
from verifier.gateway import Gateway, atomic_write_text, backends_text, nginx_map_text
from verifier.server import run
from verifier.service import Verifier

log = logging.getLogger("verifier")
USAGE = 2


def _setup_logging(cfg: VerifierConfig | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if cfg is not None and cfg.log_file is not None:
        handlers.append(logging.FileHandler(cfg.log_file, encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("uvicorn.access", "alembic", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _store(cfg: VerifierConfig) -> db.Store:
    db.upgrade(cfg.database_url)
    return db.Store(db.make_engine(cfg.database_url))


def cmd_serve(cfg: VerifierConfig, _args: argparse.Namespace) -> int:
    store = _store(cfg)
    verifier = Verifier(cfg, store, Gateway(cfg.gateway))
    p = verifier.policy.policy
    log.info("policy %s serial %d (key %s); recheck %d s + grace %d s; credentials %s min",
             p.id, p.serial, verifier.policy.key_id, verifier.recheck_seconds,
             verifier.grace_seconds, cfg.credential_minutes)
    console = make_console(cfg, store.engine) if cfg.extra.get("console") else None
    run(build_app(verifier, console=console), cfg)
    return 0


def cmd_db_upgrade(cfg: VerifierConfig, _args: argparse.Namespace) -> int:
    db.upgrade(cfg.database_url)
    print("database at the newest schema")
    return 0


def cmd_assign(cfg: VerifierConfig, args: argparse.Namespace) -> int:
    store = _store(cfg)
    if args.assign_cmd == "import":
        rows = parse_csv(Path(args.csv).read_text(encoding="utf-8"))
        for a in rows:
            store.set_assignment(a)
        print(f"{len(rows)} assignments imported")
    elif args.assign_cmd == "set":
        store.set_assignment(check(args.user, args.pc, args.host, args.port))
    elif args.assign_cmd == "remove":
        if not store.remove_assignment(args.user):
            print(f"no assignment for {args.user}", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(to_csv(store.assignments()))
    return 0


def cmd_gateway_render(cfg: VerifierConfig, args: argparse.Namespace) -> int:
    store = _store(cfg)
    if args.nginx:
        text = nginx_map_text(store.assignments())
        out = Path(args.out) if args.out else None
    else:
        text = backends_text(store.assignments())
        out = Path(args.out) if args.out else cfg.gateway.backends_file
    if out is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(out, text)
        print(f"wrote {out}; reload the gateway to add or change office PCs")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="byod-verifier", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--config", required=True, help="verifier.toml")
        return sp

    with_config(sub.add_parser("serve", help="run the verifier")).set_defaults(fn=cmd_serve)
    dbp = sub.add_parser("db", help="database schema")
    dbs = dbp.add_subparsers(dest="db_cmd", required=True)
    with_config(dbs.add_parser("upgrade")).set_defaults(fn=cmd_db_upgrade)
    ap = sub.add_parser("assign", help="user -> office PC assignments")
    asub = ap.add_subparsers(dest="assign_cmd", required=True)
    imp = with_config(asub.add_parser("import", help="import user,pc,host,port CSV"))
    imp.add_argument("csv")
    st = with_config(asub.add_parser("set"))
    for name in ("user", "pc", "host", "port"):
        st.add_argument(name)
    rm = with_config(asub.add_parser("remove"))
    rm.add_argument("user")
    with_config(asub.add_parser("list"))
    for sp in asub.choices.values():
        sp.set_defaults(fn=cmd_assign)
    gp = sub.add_parser("gateway", help="gateway files")
    gsub = gp.add_subparsers(dest="gw_cmd", required=True)
    rnd = with_config(gsub.add_parser("render", help="write backends.cfg from the assignments"))
    rnd.add_argument("--out")
    rnd.add_argument("--nginx", action="store_true",
                     help="the nginx stream map (admission only) instead of HAProxy backends")
    rnd.set_defaults(fn=cmd_gateway_render)
    demo = sub.add_parser("demo", help="a whole demo city side on loopback")
    demo.add_argument("--dir", required=True)
    demo.add_argument("--recheck-seconds", type=int)
    demo.add_argument("--grace-seconds", type=int)
    add_console_parsers(sub, with_config)  # console, user, retention, departments
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cmd == "demo":
        _setup_logging(None)
        return run_demo(Path(args.dir), recheck_seconds=args.recheck_seconds,
                        grace_seconds=args.grace_seconds)
    if getattr(args, "config", None) is None:
        print("byod-verifier: --config verifier.toml is required", file=sys.stderr)
        return USAGE
    try:
        cfg = load_config(Path(args.config))
    except ConfigError as exc:
        print(f"byod-verifier: configuration: {exc}", file=sys.stderr)
        return USAGE
    _setup_logging(cfg)
    try:
        code: int = args.fn(cfg, args)
    except AgentError as exc:  # the agent's errors (policy, keys...): their message and code
        print(f"byod-verifier: {i18n.render(exc.message, i18n.detect_language())}",
              file=sys.stderr)
        return exc.exit_code
    except (AssignmentError, ValueError) as exc:
        print(f"byod-verifier: {exc}", file=sys.stderr)
        return USAGE
    except Exception as exc:
        log.exception("byod-verifier %s failed", args.cmd)
        print(f"byod-verifier: {type(exc).__name__} (details in the log)", file=sys.stderr)
        return exitcodes.INTERNAL  # not 1: its own code (README, agent/core/exitcodes.py)
    return code
