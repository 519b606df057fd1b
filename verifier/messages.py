"""Refusal texts in Japanese and English from resources/i18n/*/verifier.json, and name rules."""

from __future__ import annotations

import re

from agent.core import i18n

USER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
PC_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def refusal(code: str, **params: str | int) -> tuple[str, str]:
    key = f"verifier.refused.{code}"
    if key not in i18n.catalogue("en"):
        key = "verifier.refused.internal"
    return i18n.text(key, "ja", **params), i18n.text(key, "en", **params)
