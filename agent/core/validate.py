"""Strict validators for values that reach a command line, an .rdp file or a file name.

Every pattern is matched with ``re.fullmatch`` (``$`` also matches before a trailing newline, so
``"alice\\n"`` would pass a ``^...$`` pattern with ``re.match``). Hosts follow one grammar: an
RFC 1123 name or an IPv4/IPv6 literal **without** a zone identifier (``fe80::1%eth0``): Python's
``ipaddress`` accepts any text after ``%``, which would put commas into FreeRDP's
comma-separated ``/cert:`` option and arbitrary text into an .rdp ``full address``.
"""

from __future__ import annotations

import ipaddress
import re

# sAMAccountName, user@domain (UPN) and DOMAIN\user forms; never starts like an option.
USERNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._@\\-]{0,103}")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_V6_CHARS = re.compile(r"[0-9A-Fa-f:.]{2,45}")
_V4 = re.compile(r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}")


def username(value: object) -> str | None:
    """The user name when it is safe for ``/u:NAME`` and an .rdp file, else None."""
    if isinstance(value, str) and USERNAME.fullmatch(value):
        return value
    return None


def ip_literal(value: str) -> str | None:
    """A canonical IPv4/IPv6 literal, or None (zone identifiers, brackets, anything else)."""
    if _V4.fullmatch(value):
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            return None
    if ":" in value and _V6_CHARS.fullmatch(value):
        try:
            return str(ipaddress.IPv6Address(value))
        except ValueError:
            return None
    return None


def dns_name(value: str) -> bool:
    if not value or len(value) > 253 or value.endswith("."):
        return False
    labels = value.split(".")
    return all(_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def host(value: object) -> str | None:
    """The host (canonical for IP literals) when it fits the strict grammar, else None."""
    if not isinstance(value, str) or not value:
        return None
    literal = ip_literal(value)
    if literal is not None:
        return literal
    return value if dns_name(value) else None


def token(value: object, pattern: re.Pattern[str]) -> str | None:
    """``value`` when the whole of it matches ``pattern`` (never a trailing newline)."""
    if isinstance(value, str) and pattern.fullmatch(value):
        return value
    return None


MAX_TOML_DEPTH = 16


def toml_nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and inline tables in a TOML text, read without recursion.

    Strings (basic, literal, multi-line) and comments are skipped, so brackets inside them do not
    count. A table header ``[a]``/``[[a]]`` counts as its own brackets (at most 2). The count is
    done before ``tomllib`` sees the text: a deeply nested value makes ``tomllib`` recurse until
    ``RecursionError``, which is not a ``TOMLDecodeError``.
    """
    depth = deepest = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "#":
            nl = text.find("\n", i)
            i = n if nl < 0 else nl
            continue
        if ch in "\"'":
            triple = text.startswith(ch * 3, i)
            end_mark = ch * 3 if triple else ch
            j = i + len(end_mark)
            while j < n:
                if ch == '"' and text[j] == "\\":
                    j += 2
                    continue
                if text.startswith(end_mark, j):
                    break
                if not triple and text[j] == "\n":
                    break
                j += 1
            i = j + len(end_mark)
            continue
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
        i += 1
    return deepest
