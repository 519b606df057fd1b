"""``byod-admin``: IT's command line (policy signing, installer configuration, release signing)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from agent import __version__, exitcodes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="byod-admin", description="BYOD Agent tools for IT.")
    parser.add_argument("--version", action="version", version=f"byod-admin {__version__}")
    parser.add_subparsers(dest="command")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return exitcodes.USAGE
    return int(args.handler(args))
