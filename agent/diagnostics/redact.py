"""Scrub secrets and pseudonymize personal data before anything leaves the PC.

Secrets (private keys, passwords, tokens) are replaced by a fixed marker. Personal identifiers get
consistent pseudonyms (``user-1``, ``host-1``, ``ip-2``...) so the help desk can still follow "the
same address failed twice" without learning the address. The mapping pseudonym -> original stays on
the PC (see mapping.py). Covered: the user's names and profile paths, host names, IPv4/IPv6 and MAC
addresses, e-mail addresses, Japanese phone numbers and 12-digit numbers that pass the My Number
(個人番号) check digit (番号法施行令 第8条), Wi-Fi network names (SSID fields), and any word
that carries a long digit run inside it (masked whole: a token, never half a token).

One pass: the secret shapes of agent.core.scrub and the personal-data shapes here are the
alternatives of one compiled pattern per Redactor, so a log is scanned once. The text is
NFKC-normalized first, so full-width digits (``０９０－１２３４－５６７８``) are caught too.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agent.core import scrub
from agent.core.scrub import scrub_secrets

__all__ = ["Redactor", "my_number_valid", "scrub_secrets"]

# Phone separators after NFKC: hyphen-like dashes, the katakana prolonged-sound mark people type
# for a dash, or spaces.
_SEP = r"(?:[ \t]*[-\u2010-\u2015\u2212\u30fc][ \t]*|[ \t]+)"
PII_ALTERNATIVES: tuple[tuple[str, str], ...] = (
    ("email", r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
    ("home", r"(?=[A-Za-z]:|/)(?i:(?:[A-Z]:\\+Users\\+|/home/|/Users/)"
             r"(?P<home_user>[^\\/\s\"':]+))"),
    # nmcli 802-11-wireless.ssid, netsh "SSID 1 : name", airport "SSID: name", JSON "ssid"
    ("ssid", r"(?=[SsEeNnWw])(?i:(?P<ssid_key>(?<![A-Za-z0-9])(?:ssid|essid|network[ _-]?name|"
             r"wi-?fi[ _-]?name)(?:[ \t]+\d+)?[\"']?[ \t]*[:=][ \t]*)"
             r"(?P<ssid_value>\"(?:[^\"\\]|\\.)*\"|\\\"(?:[^\\]|\\[^\"])*\\\"|'[^'\r\n]*'"
             r"|[^\s,;}\"\\][^\r\n,;}\"\\]*))"),
    ("names", r"(?!x)x"),  # replaced per Redactor by the user's and host's own names
    ("mac", r"(?=[0-9A-Fa-f]{2}[:-])\b[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}\b"),
    ("digit_token", r"(?=[A-Za-z0-9_+/=-]{8})(?<![A-Za-z0-9_+/=-])(?=[A-Za-z0-9_+/=-]*[A-Za-z_])"
                    r"(?=[A-Za-z0-9_+/=-]*\d{7})[A-Za-z0-9_+/=-]+"),
    ("ipv4", r"(?=\d)(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])"),
    ("ipv6", r"(?=[0-9A-Fa-f]{0,4}:)(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}"
             r"(?![0-9A-Fa-f:])"),
    ("twelve", r"(?=\d)(?<!\d)(?P<tw1>\d{4})[ -]?(?P<tw2>\d{4})[ -]?(?P<tw3>\d{4})(?!\d)"),
    # Japanese numbers: fixed lines 0X-XXXX-XXXX (10 digits), mobiles 070/080/090, IP phones
    # 050, free dial 0120, +81 forms; hyphens, dashes or spaces; (03) 1234-5678.
    ("phone", r"(?=[0+(])(?<![\d-])(?:\+81" + _SEP + r"?\(?0?\)?\d{1,4}" + _SEP + r"?\d{1,4}" + _SEP
              + r"?\d{4}|\(0\d{1,4}\)" + _SEP + r"?\d{1,4}" + _SEP + r"?\d{4}|0\d{1,4}" + _SEP
              + r"\d{1,4}" + _SEP + r"\d{3,4}|0\d{9,10})(?![\d-])"),
)
_ISO_BASIC = re.compile(r"\d{8}T\d{4,6}Z?")  # 20261201T211450Z: a time, not a token
_LONG_DIGITS = re.compile(r"\d{7}")
# Kept as is: they identify nobody and help reading a log.
_KEEP_IPS = {"127.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "::"}  # noqa: S104


def my_number_valid(digits: str) -> bool:
    """12 digits whose last one is the My Number check digit."""
    if len(digits) != 12 or not digits.isdigit():
        return False
    body = [int(d) for d in digits[:11]]
    total = 0
    for n in range(1, 12):  # n-th digit counted from the right of the 11-digit body
        q = n + 1 if n <= 6 else n - 5
        total += body[11 - n] * q
    rest = total % 11
    check = 0 if rest <= 1 else 11 - rest
    return check == int(digits[11])


def _phone_digits(text: str) -> str | None:
    """The digits of a plausible Japanese number (10 or 11 digits, or +81 and 9-10), else None."""
    digits = re.sub(r"\D", "", text)
    if text.lstrip().startswith("+81"):
        national = digits[2:].removeprefix("0")
        return "0" + national if len(national) in (9, 10) else None
    return digits if len(digits) in (10, 11) else None


@functools.lru_cache(maxsize=16)
def _pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    """Secrets, then personal data, in one alternation (the user's and host's names inside)."""
    if names:
        # Boundaries that also work next to Japanese text and path separators.
        alt = "|".join(re.escape(n) for n in names)
        first = "".join(sorted({c for n in names for c in (n[0].lower(), n[0].upper())}))
        name_pat = (f"(?=[{re.escape(first)}])" + r"(?i:(?<![A-Za-z0-9_.-])(?:" + alt
                    + r")(?![A-Za-z0-9_-]))")
    else:
        name_pat = r"(?!x)x"
    pii = tuple((n, name_pat if n == "names" else p) for n, p in PII_ALTERNATIVES)
    firsts = "".join({c for n in names for c in (n[0].lower(), n[0].upper())})
    return scrub.compile_alternatives(scrub.SECRET_ALTERNATIVES + pii, firsts)


@dataclass
class Redactor:
    """Redacts text consistently: the same original always gets the same pseudonym."""

    user_names: Iterable[str] = ()
    host_names: Iterable[str] = ()
    mapping: dict[str, str] = field(default_factory=dict)  # original -> pseudonym
    _counters: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        users = sorted({scrub.normalize(u) for u in self.user_names if len(u) >= 2},
                       key=len, reverse=True)
        hosts = sorted({scrub.normalize(h) for h in self.host_names if len(h) >= 2},
                       key=len, reverse=True)
        self._kind: dict[str, str] = {}
        for kind, names in (("host", hosts), ("user", users)):  # a user name wins a tie
            for name in names:
                self._kind[name.lower()] = kind
        ordered = tuple(sorted(self._kind, key=len, reverse=True))  # longest name first
        self._re = _pattern(ordered)
        for name in ordered:  # numbered in a stable order, whatever the text holds
            self._pseudonym(self._kind[name], name)

    def _pseudonym(self, kind: str, original: str) -> str:
        key = f"{kind}:{original}"
        if key not in self.mapping:
            self._counters[kind] = self._counters.get(kind, 0) + 1
            self.mapping[key] = f"{kind}-{self._counters[kind]}"
        return self.mapping[key]

    def text(self, s: str) -> str:
        return scrub.substitute(self._re, scrub.normalize(s), self._personal)

    def _personal(self, name: str, m: re.Match[str]) -> str:
        raw = m.group(name)
        if name == "email":
            return self._pseudonym("email", raw.lower())
        if name == "home":
            user = m.group("home_user")
            return raw[: -len(user)] + self._pseudonym("user", user.lower())
        if name == "ssid":
            value = m.group("ssid_value").strip().strip("\\").strip("\"'")
            return m.group("ssid_key") + self._pseudonym("ssid", value)
        if name == "names":
            key = raw.lower()
            return self._pseudonym(self._kind.get(key, "user"), key)
        if name == "mac":
            return self._pseudonym("mac", raw.lower().replace("-", ":"))
        if name == "digit_token":
            return raw if not _LONG_DIGITS.search(_ISO_BASIC.sub("", raw)) else scrub.SECRET
        if name == "ipv4":
            return self._ipv4(raw)
        if name == "ipv6":
            return self._ipv6(raw)
        if name == "twelve":
            digits = m.group("tw1") + m.group("tw2") + m.group("tw3")
            if my_number_valid(digits):
                return self._pseudonym("mynumber", digits)
            phone = _phone_digits(raw) if raw.startswith("0") else None
            return self._pseudonym("phone", phone) if phone else raw
        if name == "phone":
            phone = _phone_digits(raw)
            return self._pseudonym("phone", phone) if phone else raw
        return raw

    def _ipv4(self, raw: str) -> str:
        try:
            ipaddress.IPv4Address(raw)
        except ValueError:
            return raw  # a version string such as 1.2.3.4000, not an address
        return raw if raw in _KEEP_IPS else self._pseudonym("ip", raw)

    def _ipv6(self, raw: str) -> str:
        try:
            addr = ipaddress.IPv6Address(raw)
        except ValueError:
            return raw  # times such as 12:30:45 are not addresses
        return raw if str(addr) in _KEEP_IPS else self._pseudonym("ip", str(addr))

    def obj(self, value: Any) -> Any:
        """Redact every string (keys included) in a JSON-like structure."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.obj(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.obj(v) for v in value]
        return value
