"""Japanese and English text for every user-facing message.

A language's catalogue is every resources/i18n/<lang>/*.json file merged (one file per area, so
areas are translated independently; a key defined twice is an error). It serves the CLI, the tray
and the bundle, and a test proves the Japanese and English catalogues complete and consistent.
Templates use ``{name}`` placeholders (str.format syntax) filled from a Message's params.
"""

from __future__ import annotations

import contextlib
import json
import locale
import os
from collections.abc import Mapping
from functools import cache

from agent.core import textsafe
from agent.core.errors import os_text_reason
from agent.core.messages import Message
from agent.core.paths import resources_dir

LANGS: tuple[str, ...] = ("ja", "en")
DEFAULT_LANG = "ja"  # the product's users are Japanese municipal staff


@cache
def catalogue(lang: str) -> Mapping[str, str]:
    if lang not in LANGS:
        raise ValueError(f"unsupported language {lang!r}")
    merged: dict[str, str] = {}
    for path in sorted((resources_dir() / "i18n" / lang).glob("*.json")):
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError(f"{path}: a catalogue maps keys to strings")
        twice = merged.keys() & data.keys()
        if twice:
            raise ValueError(f"{path}: keys already defined elsewhere: {sorted(twice)}")
        merged.update(data)
    return merged


class _Keep(dict[str, object]):
    def __missing__(self, key: str) -> str:  # never crash on a template/params mismatch
        return "{" + key + "}"


def text(key: str, lang: str, **params: object) -> str:
    template = catalogue(lang).get(key) or catalogue("en").get(key)
    if template is None:
        return key
    # Parameters are outside text (file names, certificate subjects, product names): no control
    # character, ESC sequence or bidi override reaches a terminal or a widget (issue 18).
    return template.format_map(_Keep({k: textsafe.block(_plain(v, lang)) if isinstance(v, str)
                                      else v for k, v in params.items()}))


def _plain(value: str, lang: str) -> str:
    """Python's English OS error text as a parameter is shown translated (agent/core/errors.py)."""
    if len(value) > 300:
        return value
    reason = os_text_reason(value)
    if reason is None:
        return value
    if reason.key == "oserror.with_path":
        return text("oserror.with_path", lang, reason=text(str(reason.params["reason"]), lang),
                    path=reason.params["path"])
    return render(reason, lang)


def render(message: Message, lang: str) -> str:
    return text(message.key, lang, **dict(message.params))


def both(message: Message) -> dict[str, str]:
    return {lang: render(message, lang) for lang in LANGS}


def detect_language(env: Mapping[str, str] | None = None) -> str:
    """The OS language when it is Japanese or English; Japanese when nothing says otherwise."""
    env = os.environ if env is None else env
    candidates = [env.get(k, "") for k in ("BYOD_AGENT_LANG", "LC_ALL", "LC_MESSAGES", "LANG")]
    if not any(candidates):
        with contextlib.suppress(ValueError):
            candidates.append(locale.getlocale()[0] or "")
    for value in candidates:
        low = value.lower()
        if low.startswith(("ja", "japanese")):
            return "ja"
        if low.startswith(("en", "english")):
            return "en"
        if low and low not in ("c", "posix", "c.utf-8"):
            return "en"  # another language: English is the closer fallback
    return DEFAULT_LANG
