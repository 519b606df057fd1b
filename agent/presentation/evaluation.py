"""The evaluation worker's one message to the tray, defined once for both sides.

The resident tray does not evaluate: it starts ``byod-agent evaluate --wire`` (a short-lived
process; agent/commands/evaluate.py), which runs the posture checks under the signed policy, reads
the certificate's expiry, and prints **one line**: ``EvaluationResult.to_wire()``. The tray reads
it back with ``EvaluationResult.from_wire`` and never imports the policy, posture, keystore,
cryptography or keyring code (docs/tray.md "The evaluation worker").

The line carries the finished ``StatusView`` in every catalogue language (a language switch in the
tray repaints without a new run) and the certificate's expiry warning, if it could be read. Both
directions walk the same field table (``_VIEW``, ``_ROW``, ``_TARGET``), built from the dataclasses
themselves, so a field added to ``StatusView`` without a wire kind fails at import, not in the
field. Anything malformed is refused with ``WireError``: the tray then shows its error state with
the reason, never a result it could not read.

This module imports only agent.core and the view types (tests/unit/test_evaluate_worker.py holds
it).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from agent.core import i18n
from agent.core.status import Status
from agent.presentation.status_view import CheckRow, Effect, StatusView, TargetChoice, TrayState

WIRE_SCHEMA = 1
MAX_WIRE_BYTES = 4 * 1024 * 1024  # a full report with evidence is ~20 KB per language
MAX_ROWS = 200
MAX_TEXT = 64 * 1024  # one string (a tooltip, a reason, a fix step)
MAX_ITEMS = 200  # fix steps, targets


class WireError(ValueError):
    """The worker's line could not be read; ``str()`` is an English line for the log."""


@dataclass(frozen=True)
class CertExpiry:
    """``agent.keystore.certs.ExpiryWarning`` as the tray receives it (same two fields)."""

    threshold: int  # 30, 7 or 1 days; 0 once expired
    days_left: int


@dataclass(frozen=True)
class EvaluationResult:
    views: Mapping[str, StatusView]  # one per ``i18n.LANGS``
    cert_read: bool = False  # the certificate's status was read: ``cert_warning`` is its answer
    cert_warning: CertExpiry | None = None

    def view(self, lang: str) -> StatusView:
        return self.views.get(lang) or self.views[i18n.LANGS[0]]

    def to_wire(self) -> str:
        data = {
            "schema": WIRE_SCHEMA,
            "kind": "evaluation",
            "views": {lang: _encode(_VIEW, v) for lang, v in self.views.items()},
            "cert": {"read": self.cert_read,
                     "warning": None if self.cert_warning is None else
                     {"threshold": self.cert_warning.threshold,
                      "days_left": self.cert_warning.days_left}},
        }
        # default=str: evidence holds raw facts; anything JSON cannot carry goes as text
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)

    @classmethod
    def from_wire(cls, raw: bytes | str) -> EvaluationResult:
        if isinstance(raw, bytes):
            if len(raw) > MAX_WIRE_BYTES:
                raise WireError(f"message too large ({len(raw)} bytes)")
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise WireError(f"not UTF-8: {exc}") from None
        if len(raw) > MAX_WIRE_BYTES:
            raise WireError(f"message too large ({len(raw)} characters)")
        lines = [ln for ln in raw.splitlines() if ln.strip()]
        if len(lines) != 1:
            raise WireError(f"expected one line, got {len(lines)}")
        try:
            data = json.loads(lines[0])
        except (ValueError, RecursionError) as exc:
            raise WireError(f"not JSON: {exc}") from None
        obj = _dict(data, "message")
        _exact(obj, {"schema", "kind", "views", "cert"}, "message")
        if obj["schema"] != WIRE_SCHEMA or obj["kind"] != "evaluation":
            raise WireError(f"unknown message {obj['kind']!r} schema {obj['schema']!r}")
        views_in = _dict(obj["views"], "views")
        if set(views_in) != set(i18n.LANGS):
            raise WireError(f"views for {sorted(views_in)}, expected {sorted(i18n.LANGS)}")
        views = {lang: _decode(_VIEW, StatusView, v, f"views.{lang}")
                 for lang, v in views_in.items()}
        cert = _dict(obj["cert"], "cert")
        _exact(cert, {"read", "warning"}, "cert")
        read = _kind_bool(cert["read"], "cert.read")
        warning = None
        if cert["warning"] is not None:
            w = _dict(cert["warning"], "cert.warning")
            _exact(w, {"threshold", "days_left"}, "cert.warning")
            warning = CertExpiry(_kind_int(w["threshold"], "cert.warning.threshold"),
                                 _kind_int(w["days_left"], "cert.warning.days_left"))
        return cls(views, cert_read=read, cert_warning=warning)


# -- one table per dataclass: field -> (encode, decode) ---------------------------------------
Enc = Callable[[Any], Any]
Dec = Callable[[Any, str], Any]
E = TypeVar("E", bound=StrEnum)


def _dict(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise WireError(f"{where}: expected an object")
    return v


def _exact(obj: Mapping[str, Any], keys: set[str], where: str) -> None:
    if set(obj) != keys:
        missing, extra = sorted(keys - set(obj)), sorted(set(obj) - keys)
        raise WireError(f"{where}: missing {missing}, unknown {extra}")


def _kind_str(v: Any, where: str) -> str:
    if not isinstance(v, str) or len(v) > MAX_TEXT:
        raise WireError(f"{where}: expected a string of at most {MAX_TEXT} characters")
    return v


def _kind_opt_str(v: Any, where: str) -> str | None:
    return None if v is None else _kind_str(v, where)


def _kind_bool(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise WireError(f"{where}: expected true or false")
    return v


def _kind_int(v: Any, where: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or abs(v) > 1 << 53:
        raise WireError(f"{where}: expected an integer")
    return v


def _kind_opt_int(v: Any, where: str) -> int | None:
    return None if v is None else _kind_int(v, where)


def _enum(cls: type[E]) -> tuple[Enc, Dec]:
    def dec(v: Any, where: str) -> E:
        try:
            return cls(v)
        except ValueError:
            raise WireError(f"{where}: unknown {cls.__name__} {str(v)[:40]!r}") from None
    return (lambda e: e.value), dec


def _strings(v: Any, where: str) -> tuple[str, ...]:
    if not isinstance(v, list) or len(v) > MAX_ITEMS:
        raise WireError(f"{where}: expected a list of at most {MAX_ITEMS} strings")
    return tuple(_kind_str(s, f"{where}[{i}]") for i, s in enumerate(v))


def _evidence(v: Any, where: str) -> dict[str, Any]:
    return dict(_dict(v, where))  # raw facts: any JSON, bounded by the message size


_SAME: Enc = lambda v: v  # noqa: E731
_TEXT = (_SAME, _kind_str)
_OPT_TEXT = (_SAME, _kind_opt_str)

_TARGET: dict[str, tuple[Enc, Dec]] = {"id": _TEXT, "name": _TEXT}


def _records(table: dict[str, tuple[Enc, Dec]], cls: type[Any],
             limit: int) -> tuple[Enc, Dec]:
    def enc(items: tuple[Any, ...]) -> list[dict[str, Any]]:
        return [_encode(table, i) for i in items]

    def dec(v: Any, where: str) -> tuple[Any, ...]:
        if not isinstance(v, list) or len(v) > limit:
            raise WireError(f"{where}: expected a list of at most {limit} items")
        return tuple(_decode(table, cls, item, f"{where}[{i}]") for i, item in enumerate(v))
    return enc, dec


_ROW: dict[str, tuple[Enc, Dec]] = {
    "check_id": _TEXT, "status": _enum(Status), "effect": _enum(Effect), "name": _TEXT,
    "status_label": _TEXT, "mark": _TEXT, "reason": _TEXT, "fix_title": _OPT_TEXT,
    "fix_steps": (list, _strings), "settings_uri": _OPT_TEXT, "blocks_from": _OPT_TEXT,
    "evidence": (dict, _evidence), "duration_ms": (_SAME, _kind_int),
}
_VIEW: dict[str, tuple[Enc, Dec]] = {
    "state": _enum(TrayState), "headline": _TEXT, "tooltip": _TEXT,
    "rows": _records(_ROW, CheckRow, MAX_ROWS), "connect_allowed": (_SAME, _kind_bool),
    "connect_reason": _TEXT, "correlation_id": _OPT_TEXT, "generated_at": _OPT_TEXT,
    "error": _OPT_TEXT, "targets": _records(_TARGET, TargetChoice, MAX_ITEMS),
    "recheck_minutes": (_SAME, _kind_opt_int), "summary": _TEXT,
}

for _table, _cls in ((_VIEW, StatusView), (_ROW, CheckRow), (_TARGET, TargetChoice)):
    _names = {f.name for f in dataclasses.fields(_cls)}
    if _names != set(_table):  # a new field must get a wire kind here, on both sides at once
        raise RuntimeError(f"{_cls.__name__} fields {sorted(_names ^ set(_table))} "
                           "have no wire kind")


def _encode(table: dict[str, tuple[Enc, Dec]], obj: Any) -> dict[str, Any]:
    return {name: enc(getattr(obj, name)) for name, (enc, _dec) in table.items()}


def _decode(table: dict[str, tuple[Enc, Dec]], cls: type[Any], v: Any, where: str) -> Any:
    obj = _dict(v, where)
    _exact(obj, set(table), where)
    return cls(**{name: dec(obj[name], f"{where}.{name}") for name, (_enc, dec) in table.items()})
