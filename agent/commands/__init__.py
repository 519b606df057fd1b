"""One module per ``byod-agent`` subcommand; each exposes ``register(subparsers)``."""

from __future__ import annotations

import sys

from agent.core import exitcodes, i18n, textsafe


def usage_error(lang: str, key: str, **params: object) -> int:
    """Print a translated reason on stderr; return the configuration/usage exit code (2)."""
    safe = {k: v if isinstance(v, int | float) else textsafe.field(v) for k, v in params.items()}
    print(i18n.text(key, lang, **safe), file=sys.stderr)  # outside text: agent.core.textsafe
    return exitcodes.USAGE
