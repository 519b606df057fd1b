"""A strict, bounded reader for TOML that a person wrote and a program must trust.

Generic (nothing here knows the policy): bytes in, a tree of plain values out, then typed reads
of that tree through ``Table``. Every refusal is a ``Refusal(kind, field, detail)`` naming the
key's full path (``checks.os_updates.enforse``, ``targets[2].host``); the caller turns it into its
own error type and message. Kinds: ``too_large``, ``not_utf8``, ``toml``, ``too_deep``,
``missing_field``, ``unknown_field``, ``wrong_type``, ``out_of_range``, ``invalid_value``,
``control_character``.

The rules:
- size first, then UTF-8, then nesting depth counted without recursion (``validate.
  toml_nesting_depth``: a deeply nested array makes ``tomllib`` recurse into ``RecursionError``),
  then ``tomllib`` (which refuses duplicate keys and tables), then the depth of the tree itself
  (``[a.b.c...]`` headers nest tables without brackets);
- a key nobody asked for is refused (``Table.done``), so a typo can never silently weaken a rule;
- types are exact: a boolean is not an integer, ``"30"`` is not ``30``, a date-time without a
  zone is not an instant;
- every text is free of control and invisible formatting characters (they hide text in logs,
  command lines and .rdp files); every number, text and array has a range.

Declarative reads: a ``Field`` (key, ``Spec``, one line of documentation, default) read with
``read_fields``; the same ``Field`` renders its documentation (``Spec.describe``), so a schema
written with them is its own reference.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any, Protocol, TypeVar

from agent.core import validate

T = TypeVar("T")
MAX_DEPTH = validate.MAX_TOML_DEPTH


class Refusal(ValueError):
    """One reason a TOML text is not accepted; ``field`` is the key's dotted path ("" = the
    whole text) and ``params`` the values a translated message may show."""

    def __init__(self, kind: str, field: str, detail: str = "",
                 params: Mapping[str, str | int] | None = None) -> None:
        super().__init__(f"{field}: {kind} {detail}".strip())
        self.kind = kind
        self.field = field
        self.detail = detail
        self.params: dict[str, str | int] = dict(params or {})


def type_name(value: object) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", dict: "table",
            list: "array", datetime: "date-time", date: "date", time: "time"}.get(
                type(value), type(value).__name__)


def clean_text(field: str, value: str, *, multiline: bool = False) -> str:
    """No control or invisible formatting characters (bidi overrides, zero-width, private use)."""
    for ch in value:
        if ch == "\n" and multiline:
            continue
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co"):
            raise Refusal("control_character", field, f"U+{ord(ch):04X}")
    return value


def _tree_depth(root: Mapping[str, Any]) -> int:
    """How deep tables and arrays nest in a parsed tree, walked without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    return deepest


def loads(data: bytes, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Bytes -> the TOML tree, within the bounds; a leading BOM is allowed."""
    if len(data) > max_bytes:
        raise Refusal("too_large", "", f"{len(data)} bytes",
                      {"size": len(data), "limit": max_bytes})
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refusal("not_utf8", "", f"not UTF-8 at byte {exc.start}",
                      {"position": exc.start}) from exc
    if validate.toml_nesting_depth(text) > max_depth:  # before tomllib can recurse
        detail = f"arrays/inline tables nested deeper than {max_depth}"
        raise Refusal("toml", "", detail, {"detail": detail})
    try:
        tree = tomllib.loads(text.removeprefix("\ufeff"))
    except (tomllib.TOMLDecodeError, RecursionError) as exc:  # incl. duplicate keys and tables
        raise Refusal("toml", "", str(exc), {"detail": str(exc)[:200]}) from exc
    if _tree_depth(tree) > max_depth + 1:
        detail = f"tables nested deeper than {max_depth}"
        raise Refusal("toml", "", detail, {"detail": detail})
    return tree


# --- typed reads ---------------------------------------------------------------------------------


class Table:
    """One TOML table being read; ``done`` refuses whatever key nobody asked for."""

    def __init__(self, data: Mapping[str, Any], where: str = "") -> None:
        self.data = data
        self.where = where
        self.seen: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def refuse(self, kind: str, key: str | None, detail: str = "") -> Refusal:
        return Refusal(kind, self.where if key is None else self.path(key), detail)

    def key_names(self) -> Iterator[str]:
        return iter(list(self.data))

    def raw(self, key: str, kind: type[Any] | tuple[type, ...], required: bool = False) -> Any:
        """The value of ``key`` if it has one of the types (``None`` when absent)."""
        self.seen.add(key)
        if key not in self.data:
            if required:
                raise self.refuse("missing_field", key)
            return None
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int subclass in Python; TOML keeps them apart and so do we.
        if isinstance(value, bool) and bool not in kinds:
            raise self.refuse("wrong_type", key, type_name(value))
        if isinstance(value, datetime) and datetime not in kinds:
            raise self.refuse("wrong_type", key, type_name(value))
        if not isinstance(value, kinds):
            raise self.refuse("wrong_type", key, type_name(value))
        return value

    def text(self, key: str, *, max_len: int = 200, pattern: re.Pattern[str] | None = None,
             multiline: bool = False) -> str:
        value = self.opt_text(key, required=True, max_len=max_len, pattern=pattern,
                              multiline=multiline)
        if value is None:  # unreachable: raw() raised already
            raise self.refuse("missing_field", key)
        return value

    def opt_text(self, key: str, *, required: bool = False, max_len: int = 200,
                 pattern: re.Pattern[str] | None = None, multiline: bool = False) -> str | None:
        value: str | None = self.raw(key, str, required)
        if value is None:
            return None
        clean_text(self.path(key), value, multiline=multiline)
        if not value.strip() or len(value) > max_len:
            raise self.refuse("out_of_range", key, f"length 1..{max_len}")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.refuse("invalid_value", key, value[:80])
        return value

    def opt_integer(self, key: str, lo: int, hi: int, *, required: bool = False) -> int | None:
        value: int | None = self.raw(key, int, required)
        if value is not None and not lo <= value <= hi:
            raise self.refuse("out_of_range", key, f"{value} not in {lo}..{hi}")
        return value

    def integer(self, key: str, lo: int, hi: int) -> int:
        value = self.opt_integer(key, lo, hi, required=True)
        if value is None:
            raise self.refuse("missing_field", key)
        return value

    def opt_number(self, key: str, lo: float, hi: float, *,
                   required: bool = False) -> float | None:
        """An integer or a float (``20`` and ``20.5`` both mean seconds); NaN is out of range."""
        value: int | float | None = self.raw(key, (int, float), required)
        if value is None:
            return None
        if not lo <= value <= hi:  # NaN compares false: refused too
            raise self.refuse("out_of_range", key, f"{value} not in {lo:g}..{hi:g}")
        return float(value)

    def opt_boolean(self, key: str) -> bool | None:
        value: bool | None = self.raw(key, bool)
        return value

    def choice(self, key: str, choices: Sequence[str], default: str) -> str:
        value = self.opt_text(key)
        if value is None:
            return default
        if value not in choices:
            raise self.refuse("invalid_value", key, f"{value!r} not in {'|'.join(choices)}")
        return value

    def opt_date(self, key: str, *, required: bool = False) -> date | None:
        """A bare TOML date (``2025-12-09``), nothing with a time."""
        value: date | None = self.raw(key, date, required)
        return value

    def instant(self, key: str, local_zone: tzinfo) -> tuple[datetime, date]:
        value = self.opt_instant(key, local_zone, required=True)
        if value is None:
            raise self.refuse("missing_field", key)
        return value

    def opt_instant(self, key: str, local_zone: tzinfo, *, required: bool = False,
                    allow_date: bool = False) -> tuple[datetime, date] | None:
        """An offset date-time, or (when allowed) a date meaning midnight in ``local_zone``.
        Returns the instant in UTC and its date in ``local_zone``."""
        value = self.raw(key, (datetime, date), required)
        if value is None:
            return None
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise self.refuse("invalid_value", key, "date-time without a time zone")
            return value.astimezone(UTC), value.astimezone(local_zone).date()
        if not allow_date:
            raise self.refuse("wrong_type", key, "date (a date-time with zone is needed)")
        return datetime.combine(value, time(0), local_zone).astimezone(UTC), value

    def table(self, key: str, *, required: bool = False) -> Table | None:
        value = self.raw(key, dict, required)
        return None if value is None else Table(value, self.path(key))

    def tables(self, key: str, max_items: int, *, required: bool = False) -> list[Table]:
        value = self.raw(key, list, required)
        if value is None:
            return []
        if len(value) > max_items:
            raise self.refuse("out_of_range", key, f"more than {max_items} entries")
        out = []
        for n, item in enumerate(value):
            if not isinstance(item, dict):
                raise Refusal("wrong_type", f"{self.path(key)}[{n}]", type_name(item))
            out.append(Table(item, f"{self.path(key)}[{n}]"))
        return out

    def strings(self, key: str, max_items: int, pattern: re.Pattern[str], *,
                required: bool = True) -> tuple[str, ...]:
        value = self.raw(key, list, required)
        if value is None:
            return ()
        if not 1 <= len(value) <= max_items:
            raise self.refuse("out_of_range", key, f"1..{max_items} entries")
        for n, item in enumerate(value):
            where = f"{self.path(key)}[{n}]"
            if not isinstance(item, str):
                raise Refusal("wrong_type", where, type_name(item))
            clean_text(where, item)
            if not pattern.fullmatch(item):
                raise Refusal("invalid_value", where, item[:80])
        return tuple(value)

    def done(self) -> None:
        extra = sorted(set(self.data) - self.seen)
        if extra:
            raise self.refuse("unknown_field", extra[0])


# --- declarative fields --------------------------------------------------------------------------


class Spec(Protocol):
    """How one key's value is read and how its type is described in the documentation."""

    def read(self, table: Table, key: str) -> Any:
        """The typed value (``key`` is present in ``table``)."""

    def describe(self) -> str:
        """The type and range in a few words, for the reference table."""


@dataclass(frozen=True)
class Integer:
    lo: int
    hi: int

    def read(self, table: Table, key: str) -> int:
        return table.integer(key, self.lo, self.hi)

    def describe(self) -> str:
        return f"integer {self.lo}..{self.hi}"


@dataclass(frozen=True)
class Number:
    """Integer or float, read as a float (seconds)."""

    lo: float
    hi: float

    def read(self, table: Table, key: str) -> float:
        value = table.opt_number(key, self.lo, self.hi, required=True)
        if value is None:
            raise table.refuse("missing_field", key)
        return value

    def describe(self) -> str:
        return f"number {self.lo:g}..{self.hi:g}"


@dataclass(frozen=True)
class Boolean:
    def read(self, table: Table, key: str) -> bool:
        value: bool = table.raw(key, bool, required=True)
        return value

    def describe(self) -> str:
        return "boolean"


@dataclass(frozen=True)
class Choice:
    choices: tuple[str, ...]

    def read(self, table: Table, key: str) -> str:
        return table.choice(key, self.choices, self.choices[0])

    def describe(self) -> str:
        return " \\| ".join(f"`{c}`" for c in self.choices)


@dataclass(frozen=True)
class Text:
    """A string, 1..max_len characters, optionally matching ``pattern`` and passing ``check``
    (which returns the value to keep, or raises ``ValueError`` with the reason)."""

    max_len: int = 200
    pattern: re.Pattern[str] | None = None
    multiline: bool = False
    check: Callable[[str], str] | None = None
    what: str = "text"

    def read(self, table: Table, key: str) -> str:
        value = table.text(key, max_len=self.max_len, pattern=self.pattern,
                           multiline=self.multiline)
        if self.check is None:
            return value
        try:
            return self.check(value)
        except ValueError as exc:
            raise table.refuse("invalid_value", key, str(exc)[:200]) from exc

    def describe(self) -> str:
        return f"{self.what} (≤ {self.max_len})" if self.what == "text" else self.what


@dataclass(frozen=True)
class Date:
    def read(self, table: Table, key: str) -> date:
        value = table.opt_date(key, required=True)
        if value is None:
            raise table.refuse("missing_field", key)
        return value

    def describe(self) -> str:
        return "date"


@dataclass(frozen=True)
class Instant:
    """An offset date-time (or, when allowed, a date meaning midnight in ``zone``), read as
    (the instant in UTC, its date in ``zone``)."""

    zone: tzinfo
    allow_date: bool = False

    def read(self, table: Table, key: str) -> tuple[datetime, date]:
        value = table.opt_instant(key, self.zone, required=True, allow_date=self.allow_date)
        if value is None:
            raise table.refuse("missing_field", key)
        return value

    def describe(self) -> str:
        return "date or date-time with zone" if self.allow_date else "date-time with zone"


@dataclass(frozen=True)
class IntKeyed:
    """A table whose keys are numbers in a range (``{ "26100" = 4946 }``)."""

    key_lo: int
    key_hi: int
    value: Spec
    what: str = "number"

    def read(self, table: Table, key: str) -> dict[int, Any]:
        inner = table.table(key, required=True)
        if inner is None:
            raise table.refuse("missing_field", key)
        out: dict[int, Any] = {}
        for k in inner.key_names():
            if not k.isdigit() or not self.key_lo <= int(k) <= self.key_hi:
                raise inner.refuse("invalid_value", k,
                                   f"key must be a number {self.key_lo}..{self.key_hi}")
            out[int(k)] = self.value.read(inner, k)
            inner.seen.add(k)
        inner.done()
        return out

    def describe(self) -> str:
        return (f"table {self.what} ({self.key_lo}..{self.key_hi}) → "
                f"{self.value.describe()}")


@dataclass(frozen=True)
class TableArray:
    """``[[key]]``: up to ``max_items`` tables with the ``fields``, each turned into a value by
    ``build`` (which may raise ``Refusal`` for rules across fields)."""

    fields: tuple[Field, ...]
    build: Callable[[Table, dict[str, Any]], Any]
    max_items: int
    min_items: int = 0
    what: str = "array of tables"

    def read(self, table: Table, key: str) -> tuple[Any, ...]:
        rows = table.tables(key, self.max_items, required=True)
        if len(rows) < self.min_items:
            raise table.refuse("out_of_range", key, f"at least {self.min_items} entries")
        out = []
        for row in rows:
            values = read_fields(row, self.fields)
            out.append(self.build(row, values))
            row.done()
        return tuple(out)

    def describe(self) -> str:
        keys = ", ".join(f"`{f.key}`" for f in self.fields)
        return f"{self.what} ({self.min_items}..{self.max_items}): {keys}"


@dataclass(frozen=True)
class Field:
    """One key: how it reads, whether it must be there, its default and one line of docs."""

    key: str
    spec: Spec
    doc: str
    default: object = None  # what an absent key means (None: nothing, or said in ``doc``)
    required: bool = False


def read_fields(table: Table, fields: Sequence[Field]) -> dict[str, Any]:
    """The fields present in ``table`` (a required one missing is refused); the caller decides
    about keys not among ``fields`` (``table.done()``)."""
    out: dict[str, Any] = {}
    for f in fields:
        table.seen.add(f.key)
        if f.key not in table.data:
            if f.required:
                raise table.refuse("missing_field", f.key)
            continue
        out[f.key] = f.spec.read(table, f.key)
    return out
