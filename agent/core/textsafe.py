"""The one output-sanitising layer: outside text made safe for a terminal or a Qt widget.

Anything that did not come from our own catalogues (a bundle's fields, log lines, certificate
subjects, file names, policy names, OS product names) can carry control characters: ESC
sequences repaint a terminal, CR returns to the start of the line and overwrites it, a newline
starts a line that looks like ours ("Integrity: verified"), BEL rings, and bidi overrides
reorder what the reader sees. Every human-readable printer passes such values through
:func:`field` (one line) or :func:`block` (several lines); nothing is stripped silently: each
character becomes a visible escape (``\\x1b``, ``\\r``, ``\\u202e``), so the help desk sees that
something was there.

Qt: labels that show outside text are set to ``Qt.TextFormat.PlainText`` (never rich text), and
:func:`qt_plain` removes what a plain-text widget would still act on (bidi overrides, controls).
"""

from __future__ import annotations

import re

# C0 controls (tab and newline handled by the callers' choice), DEL, C1 controls (incl. NEL
# U+0085 and CSI U+009B, which some terminals honour as ESC [), the bidi embeddings/overrides and
# isolates (U+202A-202E, U+2066-2069), the implicit marks (U+200E/U+200F/U+061C), the line and
# paragraph separators (U+2028/U+2029) and the BOM/zero-width no-break space.
_UNSAFE_CLASS = (r"\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                 r"\u2066-\u2069\ufeff")
_UNSAFE = re.compile(f"[{_UNSAFE_CLASS}\\t]")
_UNSAFE_BLOCK = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029"
                           r"\u202a-\u202e\u2066-\u2069\ufeff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": " ", "\x1b": "\\x1b"}
MAX_FIELD = 2000  # a single field longer than this is cut (and says so)


def _escape(m: re.Match[str]) -> str:
    ch = m.group(0)
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def field(value: object, *, limit: int = MAX_FIELD) -> str:
    """One line: every control, newline and bidi character becomes a visible escape."""
    text = value if isinstance(value, str) else str(value)
    out = _UNSAFE.sub(_escape, text)
    if len(out) > limit:
        out = out[:limit] + "…"
    return out


def block(value: object, *, limit: int = 64 * MAX_FIELD) -> str:
    """Several lines: newlines stay (a lone CR does not), everything else as in :func:`field`."""
    text = value if isinstance(value, str) else str(value)
    text = text.replace("\r\n", "\n")
    out = _UNSAFE_BLOCK.sub(_escape, text).replace("\t", " ")
    if len(out) > limit:
        out = out[:limit] + "…"
    return out


def lines(values: object) -> list[str]:
    """Each item as one safe line (a list from outside may hold anything)."""
    if not isinstance(values, list | tuple):
        return [field(values)]
    return [field(v) for v in values]


def qt_plain(value: object, *, multiline: bool = False) -> str:
    """For a Qt widget in plain-text mode: the same escapes (newlines kept when asked)."""
    return block(value) if multiline else field(value)


def is_clean(text: str) -> bool:
    """True when ``text`` has nothing :func:`field` would escape (for validators)."""
    return _UNSAFE.search(text) is None
