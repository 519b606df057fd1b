"""One module per ``byod-agent`` subcommand; each exposes ``register(subparsers)``."""

from __future__ import annotations

import sys

from agent.core import exitcodes, i18n


def usage_error(lang: str, key: str, **params: object) -> int:
    """Print a translated reason on stderr; return the configuration/usage exit code (2)."""
    print(i18n.text(key, lang, **params), file=sys.stderr)
    return exitcodes.USAGE
