"""Scrub secrets and pseudonymize personal data before anything leaves the PC.

Secrets (private keys, passwords, tokens) are replaced by a fixed marker. Personal identifiers get
consistent pseudonyms (``user-1``, ``host-1``, ``ip-2``...) so the help desk can still follow "the
same address failed twice" without learning the address. The mapping pseudonym -> original stays on
the PC (see mapping.py). Covered: the user's names and profile paths, host names, IPv4/IPv6 and MAC
addresses, e-mail addresses, Japanese phone numbers and 12-digit numbers that pass the My Number
(個人番号) check digit (番号法施行令 第8条).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agent.core.scrub import scrub_secrets

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_MAC = re.compile(r"\b[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}\b")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")
# Japanese numbers: fixed lines 0X-XXXX-XXXX (10 digits), mobiles 070/080/090, IP phones 050,
# free dial 0120, with or without hyphens, and +81 forms.
_PHONE = re.compile(r"(?<![\d-])(?:\+81[- ]?\d{1,4}[- ]?\d{1,4}[- ]?\d{4}|0\d{1,4}-\d{1,4}-\d{4}"
                    r"|0\d{9,10})(?![\d-])")
_TWELVE = re.compile(r"(?<!\d)(\d{4})[ -]?(\d{4})[ -]?(\d{4})(?!\d)")
_HOME = re.compile(r"(?i)(?:[A-Z]:\\+Users\\+|/home/|/Users/)([^\\/\s\"':]+)")
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


@dataclass
class Redactor:
    """Redacts text consistently: the same original always gets the same pseudonym."""

    user_names: Iterable[str] = ()
    host_names: Iterable[str] = ()
    mapping: dict[str, str] = field(default_factory=dict)  # original -> pseudonym
    _counters: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        users = sorted({u for u in self.user_names if len(u) >= 2}, key=len, reverse=True)
        hosts = sorted({h for h in self.host_names if len(h) >= 2}, key=len, reverse=True)
        self._names: list[tuple[re.Pattern[str], str]] = []
        for kind, names in (("user", users), ("host", hosts)):
            for name in names:
                # Boundaries that also work next to Japanese text and path separators.
                pat = re.compile(r"(?<![A-Za-z0-9_.-])" + re.escape(name) + r"(?![A-Za-z0-9_-])",
                                 re.IGNORECASE)
                self._names.append((pat, self._pseudonym(kind, name.lower())))

    def _pseudonym(self, kind: str, original: str) -> str:
        key = f"{kind}:{original}"
        if key not in self.mapping:
            self._counters[kind] = self._counters.get(kind, 0) + 1
            self.mapping[key] = f"{kind}-{self._counters[kind]}"
        return self.mapping[key]

    def text(self, s: str) -> str:
        s = scrub_secrets(s)
        s = _EMAIL.sub(lambda m: self._pseudonym("email", m.group(0).lower()), s)
        s = _HOME.sub(lambda m: m.group(0)[: -len(m.group(1))]
                      + self._pseudonym("user", m.group(1).lower()), s)
        for pat, pseudo in self._names:
            s = pat.sub(pseudo, s)
        s = _MAC.sub(lambda m: self._pseudonym("mac", m.group(0).lower().replace("-", ":")), s)
        s = _IPV4.sub(self._ipv4, s)
        s = _IPV6.sub(self._ipv6, s)
        s = _TWELVE.sub(self._twelve, s)
        return _PHONE.sub(lambda m: self._pseudonym("phone", re.sub(r"\D", "", m.group(0))), s)

    def _ipv4(self, m: re.Match[str]) -> str:
        raw = m.group(0)
        try:
            ipaddress.IPv4Address(raw)
        except ValueError:
            return raw  # a version string such as 1.2.3.4000, not an address
        return raw if raw in _KEEP_IPS else self._pseudonym("ip", raw)

    def _ipv6(self, m: re.Match[str]) -> str:
        raw = m.group(0)
        try:
            addr = ipaddress.IPv6Address(raw)
        except ValueError:
            return raw  # times such as 12:30:45 are not addresses
        return raw if str(addr) in _KEEP_IPS else self._pseudonym("ip", str(addr))

    def _twelve(self, m: re.Match[str]) -> str:
        digits = "".join(m.groups())
        return self._pseudonym("mynumber", digits) if my_number_valid(digits) else m.group(0)

    def obj(self, value: Any) -> Any:
        """Redact every string (keys included) in a JSON-like structure."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.obj(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.obj(v) for v in value]
        return value
