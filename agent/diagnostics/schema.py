"""The shapes of a bundle's JSON members, checked before any field is used.

A small typed validator (no dependency): each spec is a callable that returns the value when it
fits and raises :class:`SchemaError` naming the path when it does not. The reader calls
:func:`check` on ``manifest.json``, ``posture.json``, ``decision.json`` and ``connectivity.json``;
a bundle whose JSON does not fit is refused as hostile (exit 2), never half-rendered with a
traceback. Fields the desk does not read are allowed (newer agents may add them) but bounded in
size by the reader's limits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Spec = Callable[[Any, str], Any]


class SchemaError(ValueError):
    def __init__(self, path: str, expected: str) -> None:
        super().__init__(f"{path or '/'}: expected {expected}")
        self.path = path


def string(max_len: int = 4000, pattern: re.Pattern[str] | None = None) -> Spec:
    def check(value: Any, path: str) -> Any:
        if not isinstance(value, str) or len(value) > max_len:
            raise SchemaError(path, f"a string of at most {max_len} characters")
        if pattern is not None and not pattern.fullmatch(value):
            raise SchemaError(path, "a string of the documented form")
        return value
    return check


def integer(lo: int = 0, hi: int = 2**53) -> Spec:
    def check(value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise SchemaError(path, f"an integer in [{lo}, {hi}]")
        return value
    return check


def boolean(value: Any, path: str) -> Any:
    if not isinstance(value, bool):
        raise SchemaError(path, "true or false")
    return value


def anything(value: Any, path: str) -> Any:
    return value


def one_of(*choices: str) -> Spec:
    def check(value: Any, path: str) -> Any:
        if value not in choices:
            raise SchemaError(path, "one of " + ", ".join(choices))
        return value
    return check


def optional(spec: Spec) -> Spec:
    def check(value: Any, path: str) -> Any:
        return None if value is None else spec(value, path)
    return check


def array(item: Spec, max_items: int = 1000) -> Spec:
    def check(value: Any, path: str) -> Any:
        if not isinstance(value, list) or len(value) > max_items:
            raise SchemaError(path, f"a list of at most {max_items} items")
        return [item(v, f"{path}/{i}") for i, v in enumerate(value)]
    return check


def obj(required: Mapping[str, Spec] | None = None,
        optional_fields: Mapping[str, Spec] | None = None, *, values: Spec | None = None) -> Spec:
    """A JSON object: ``required`` keys must be there, ``optional_fields`` may (null allowed);
    ``values`` (when given) checks every other value."""
    req = dict(required or {})
    opt = dict(optional_fields or {})

    def check(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise SchemaError(path, "an object")
        for key, spec in req.items():
            if key not in value:
                raise SchemaError(f"{path}/{key}", "a value (missing)")
            spec(value[key], f"{path}/{key}")
        for key, spec in opt.items():
            if value.get(key) is not None:
                spec(value[key], f"{path}/{key}")
        if values is not None:
            for key, v in value.items():
                if key not in req and key not in opt:
                    values(v, f"{path}/{key}")
        return value
    return check


def check(spec: Spec, value: Any, name: str) -> Any:
    return spec(value, name)


_HEX64 = re.compile(r"[0-9a-f]{64}")
_MEMBER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,120}(/[A-Za-z0-9_][A-Za-z0-9._-]{0,120})?")
_STATUS = one_of("pass", "fail", "warn", "unknown")
_BOTH = obj(values=string())  # {"ja": "...", "en": "..."}

MANIFEST = obj(
    {"schema": integer(1, 1),
     "files": array(obj({"name": string(250, _MEMBER), "sha256": string(64, _HEX64)},
                        {"size": integer()}), max_items=200)},
    {"bundle_id": string(20), "created_at": string(40), "agent_version": string(40),
     "redaction_level": one_of("strict", "standard"), "ticket": string(40)},
)

_REMEDIATION = obj(optional_fields={"key": string(200), "settings_uri": string(400),
                                    "ja": obj({"title": string()}, values=anything),
                                    "en": obj({"title": string()}, values=anything)},
                   values=anything)
POSTURE = obj(
    {"checks": array(obj({"id": string(80), "status": _STATUS},
                         {"summary": _BOTH, "evidence": anything, "remediation": _REMEDIATION,
                          "summary_key": string(200), "duration_ms": integer()},
                         values=anything), max_items=200)},
    {"host": obj(values=optional(string(400))), "compliant": boolean,
     "agent_version": string(40), "generated_at": string(40), "schema": integer(0, 100)},
    values=anything,
)
DECISION = obj(optional_fields={"correlation_id": string(80)}, values=anything)
_STEP = obj({"status": string(40)}, {"ms": integer(), "detail": string(),
                                     "address": string(200),
                                     "addresses": array(string(200), 50)}, values=anything)
CONNECTIVITY = obj(
    {"targets": array(obj({"target": string(80), "endpoint": string(300)},
                          {"dns": _STEP, "tcp": _STEP, "tls": _STEP, "mode": string(20)},
                          values=anything), max_items=50)},
    values=anything,
)
