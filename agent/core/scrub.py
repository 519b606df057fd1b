"""Secret shapes (keys, passwords, tokens) replaced by one marker: safe for any log line.

The log writer (logsetup) and the diagnostics redactor share this catalogue; pseudonyms of
personal data are the redactor's job (agent/diagnostics/redact.py), not the log's. Each entry
names the scanner rule it follows (gitleaks ``config/gitleaks.toml`` rule ids, detect-secrets
plugins, trufflehog detectors), and tests/unit/test_redact.py plants every shape in random log
lines (hypothesis) to prove it never survives.

One pass: every shape is an alternative of one compiled pattern (:data:`SECRET_ALTERNATIVES`),
so a text is scanned once, not once per shape; the redactor appends its personal-data
alternatives to the same pattern. Text is NFKC-normalized first, so full-width letters and
digits (``ｐａｓｓｗｏｒｄ＝``, ``０９０``) match the same shapes as ASCII.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

SECRET = "[REDACTED]"  # noqa: S105 (the marker, not a secret)

# A value up to the end of a header/field: stops at an unescaped double quote (JSON-lines logs
# escape the quotes inside a message) and at the end of the line.
_FIELD_VALUE = r'(?:[^"\r\n\\]|\\.)+'
# Query/form parameters whose value is a credential (OAuth 2.0 RFC 6749 access_token, code,
# refresh_token; OpenID id_token; Azure SAS sig; AWS SigV4 X-Amz-*; generic token/key names).
_QUERY_NAMES = (r"access_token|id_token|refresh_token|code|token|auth|sig|signature|"
                r"client_secret|password|passwd|apikey|api_key|key|session|sessionid|sid|"
                r"state|nonce|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|"
                r"SAMLResponse|SAMLRequest|ticket|otp|pin")

# After ``code``: the separator, then a value shaped like an OAuth 2.0 authorization code
# (RFC 6749 4.1.2 leaves the format to the server; Google's "4/0Ab...", Entra ID's "0.AX...",
# Keycloak's UUID-dotted codes): 8 or more of [A-Za-z0-9._~+/=%-] with at least one digit, not
# followed by "(" or "[" (a call or an index: a Python expression, not a value).
_OAUTH_CODE_VALUE = (r"[\"']?\s*[:=]\s*[\"']?(?=[A-Za-z0-9._~+/=%-]*[0-9])"
                     r"[A-Za-z0-9._~+/=%-]{8,}(?![A-Za-z0-9._~+/=%(\[-])")

# (name, pattern). Order matters: at one position the first alternative that matches wins, so
# the longest/most specific shapes come first. Each starts with a cheap look-ahead on its first
# character(s), so a word that cannot begin a shape costs one character test per shape.
SECRET_ALTERNATIVES: tuple[tuple[str, str], ...] = (
    # gitleaks private-key; detect-secrets PrivateKeyDetector
    ("pem", r"-----BEGIN (?P<pem_kind>[A-Z0-9 ]{0,40}?)-----(?s:.*?)"
            r"(?:-----END (?P=pem_kind)-----|\Z)"),
    # gitleaks age-secret-key (the agent's own mapping identity format), upper or lower case
    ("age", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{20,}"),
    # detect-secrets BasicAuthDetector: scheme://user:password@
    ("url_cred", r"(?=[A-Za-z][A-Za-z0-9+.-]{0,20}://)(?i:\b(?P<url_scheme>[a-z][a-z0-9+.-]{0,20}://)[^/\s:@\"']+:[^/\s@\"']+@)"),
    # trufflehog URI / OAuth detectors: credentials in a query string or form body
    ("query", r"(?<=[?&;#])(?i:(?P<query_key>(?<![A-Za-z0-9_-])(?:" + _QUERY_NAMES + r")=)"
              r"[^&#\s\"'<>]+)"),
    # Cookie / Set-Cookie / Authorization / API-key headers: the whole value
    ("header", r"(?=[SsCcPpAaXx])(?i:(?P<header_name>\b(?:set-cookie|cookie|"
               r"proxy-authorization|authorization|"
               r"x-api-key|x-auth-token|x-amz-security-token)\b[\"']?\s*[:=]\s*\"?)"
               + _FIELD_VALUE + ")"),
    # gitleaks jwt
    ("jwt", r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
    # detect-secrets BasicAuth / gitleaks authorization bearer
    ("bearer", r"(?=[Bb])(?i:\b(?P<bearer_kind>bearer|basic)\s+(?=[A-Za-z0-9._~+/=-]{8})"
               r"[^\s\"',;]+)"),
    # gitleaks aws-access-token, github-pat/oauth/app, gitlab-pat, slack tokens, gcp-api-key,
    # stripe; detect-secrets AWSKeyDetector, SlackDetector, StripeDetector
    ("vendor", r"(?=[Agxsr])\b(?:(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}|"
               r"gh[pousr]_[A-Za-z0-9_-]{20,}|"
               r"github_pat_[A-Za-z0-9_]{40,}|glpat-[A-Za-z0-9_-]{20,}|"
               r"xox[abposr]-[A-Za-z0-9_-]{10,}|AIza[0-9A-Za-z_-]{35}|"
               r"(?:sk|rk)_live_[0-9A-Za-z]{16,})[A-Za-z0-9_-]*"),
    # detect-secrets KeywordDetector: name = value (the name is kept, the value goes). ``code``
    # alone is also a common variable name (a traceback shows ``code = body()``), so it counts
    # only when its value looks like an OAuth code (_OAUTH_CODE_VALUE).
    ("kv", r"(?=[PpSsTtAaCcOo])(?i:(?P<kv_key>(?<![A-Za-z0-9])(?:password|passwd|pwd|"
           r"passphrase|secret|token|"
           r"api[_-]?key|access[_-]?key|secret[_-]?key|client[_-]?secret|private[_-]?key|otp|"
           r"pin|credential|credentials|code(?=" + _OAUTH_CODE_VALUE + r"))(?![A-Za-z0-9]))"
           r"(?P<kv_sep>[\"']?\s*[:=]\s*)"
           r"(?:\"(?:[^\"\\]|\\.)*\"|'[^']*'|\\\"(?:[^\\]|\\[^\"])*\\\"|[^\s,;&\"}]+))"),
)


def secret_replacement(name: str, m: re.Match[str]) -> str:
    """What one matched secret shape becomes (its name or key kept, the value gone)."""
    if name == "pem":
        return f"[REDACTED {m.group('pem_kind') or 'PEM'}]"
    if name == "url_cred":
        return f"{m.group('url_scheme')}{SECRET}@"
    if name == "query":
        return f"{m.group('query_key')}{SECRET}"
    if name == "header":
        return f"{m.group('header_name')}{SECRET}"
    if name == "bearer":
        return f"{m.group('bearer_kind')} {SECRET}"
    if name == "kv":
        return f"{m.group('kv_key')}{m.group('kv_sep')}{SECRET}"
    return SECRET


_ASCII_FIRST = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+/=(:.%-"


def compile_alternatives(alternatives: tuple[tuple[str, str], ...],
                         first_chars: str = "") -> re.Pattern[str]:
    """One pattern: a lead character that is not a letter or digit, then any alternative.

    Every shape starts a word, so it follows a character that is not [A-Za-z0-9] (the text gets
    a leading newline in :func:`substitute`). Starting the whole pattern with that character
    class lets the regex engine skip the inside of words in its C search loop instead of
    trying every alternative at every position: that is what makes one pass over a 50 MB log
    fast enough (bench/export.py ``redact_mb_per_s``). The lead is put back by ``substitute``.
    """
    body = "|".join(f"(?P<{name}>{pat})" for name, pat in alternatives)
    # After the lead, only a character some shape can start with (letters, digits and the few
    # signs e-mail, paths, IPv6, phone and PEM shapes start with) enters the alternatives.
    # ``first_chars``: more characters a shape may start with (the first letters of the user's
    # and host's names, which may be Japanese).
    extra = re.escape("".join(sorted(set(first_chars) - set(_ASCII_FIRST))))
    return re.compile(f"(?P<lead>[^A-Za-z0-9])(?=[A-Za-z0-9_+/=(:.%{extra}-])(?:{body})")


_SECRETS = compile_alternatives(SECRET_ALTERNATIVES)
SECRET_NAMES = frozenset(name for name, _ in SECRET_ALTERNATIVES)
# A key block or an age key glued to a word ("keyAGE-SECRET-KEY-1...") has no lead character;
# these two also run anywhere, only when their literal marker is in the text (a C-speed test).
_GLUED = re.compile("|".join(f"(?P<{n}>{p})" for n, p in SECRET_ALTERNATIVES
                             if n in ("pem", "age")))
_GLUED_MARKERS = ("-----BEGIN", "AGE-SECRET-KEY-1")


def normalize(s: str) -> str:
    """NFKC: full-width digits and letters become ASCII (``０９０`` -> ``090``)."""
    return s if s.isascii() else unicodedata.normalize("NFKC", s)


def substitute(pattern: re.Pattern[str], s: str,
               other: Callable[[str, re.Match[str]], str] | None = None) -> str:
    """One pass of ``pattern`` (built by :func:`compile_alternatives`); secret alternatives are
    replaced here, any other alternative by ``other`` (given the alternative's name and the
    match; the alternative's own text is ``m.group(name)``)."""
    if any(marker in s for marker in _GLUED_MARKERS):
        s = _GLUED.sub(lambda m: secret_replacement(m.lastgroup or "", m), s)

    def repl(m: re.Match[str]) -> str:
        name = m.lastgroup or ""
        if name in SECRET_NAMES:
            return m.group("lead") + secret_replacement(name, m)
        if other is None:
            return m.group(0)
        return m.group("lead") + other(name, m)
    return pattern.sub(repl, "\n" + s)[1:]


def scrub_secrets(s: str) -> str:
    """Only the secret patterns (no pseudonyms): safe for any log line."""
    return substitute(_SECRETS, normalize(s))
