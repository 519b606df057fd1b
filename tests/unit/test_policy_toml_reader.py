"""The generic strict TOML reader (agent/core/strict_toml.py) on its own: bounds, exact types,
unknown keys by path, declarative fields. The policy schema has its own tests."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from agent.core import strict_toml
from agent.core.strict_toml import (
    Boolean,
    Choice,
    Date,
    Field,
    Instant,
    Integer,
    IntKeyed,
    Number,
    Refusal,
    Table,
    TableArray,
    Text,
    loads,
    read_fields,
)

JST = timezone(timedelta(hours=9))


def refusal(fn: Any) -> Refusal:
    with pytest.raises(Refusal) as info:
        fn()
    return info.value


def table(text: str) -> Table:
    return Table(loads(text.encode(), max_bytes=1 << 16))


def test_size_utf8_and_syntax_are_refused_before_anything_reads_a_key() -> None:
    assert refusal(lambda: loads(b"a = 1\n" * 10, max_bytes=20)).kind == "too_large"
    r = refusal(lambda: loads("a = \"庁\"".encode("cp932"), max_bytes=100))
    assert r.kind == "not_utf8" and r.params["position"] == 5
    assert refusal(lambda: loads(b"a = 1\na = 2\n", max_bytes=100)).kind == "toml"  # duplicate
    assert loads("\ufeffa = 1\n".encode(), max_bytes=100) == {"a": 1}  # a BOM is allowed


def test_nesting_is_bounded_by_brackets_and_by_table_headers() -> None:
    deep_array = "a = " + "[" * 17 + "]" * 17 + "\n"
    assert "nested deeper" in refusal(lambda: loads(deep_array.encode(), max_bytes=1 << 16)
                                      ).detail
    # Tens of thousands of brackets would make tomllib recurse into RecursionError: refused first.
    assert refusal(lambda: loads(("a = " + "[" * 50000).encode(), max_bytes=1 << 20)
                   ).kind == "toml"
    # Dotted headers nest tables without a single bracket pair per level.
    header = "[" + ".".join(f"k{n}" for n in range(30)) + "]\nx = 1\n"
    r = refusal(lambda: loads(header.encode(), max_bytes=1 << 16))
    assert r.kind == "toml" and "tables nested deeper" in r.detail
    ok = "[" + ".".join(f"k{n}" for n in range(10)) + "]\nx = 1\n"
    assert loads(ok.encode(), max_bytes=1 << 16)["k0"]["k1"]


@pytest.mark.parametrize(("value", "spec", "kind"), [
    ("true", Integer(0, 9), "wrong_type"),  # a boolean is not an integer
    ("\"3\"", Integer(0, 9), "wrong_type"),
    ("3.0", Integer(0, 9), "wrong_type"),
    ("10", Integer(0, 9), "out_of_range"),
    ("nan", Number(1, 9), "out_of_range"),
    ("-inf", Number(1, 9), "out_of_range"),
    ("false", Number(1, 9), "wrong_type"),
    ("1", Boolean(), "wrong_type"),
    ("\"maybe\"", Choice(("yes", "no")), "invalid_value"),
    ("\"\"", Text(), "out_of_range"),
    ("\"   \"", Text(), "out_of_range"),
    ("\"abcdef\"", Text(5), "out_of_range"),
    ("\"a\\u202eb\"", Text(), "control_character"),  # bidi override
    ("\"a\\nb\"", Text(), "control_character"),  # newline only where multi-line is allowed
    ("\"x1\"", Text(pattern=re.compile("[a-z]+")), "invalid_value"),
    ("2026-01-01T00:00:00", Instant(JST), "invalid_value"),  # no zone
    ("2026-01-01", Instant(JST), "wrong_type"),  # a date where a date-time is needed
    ("2026-01-01T00:00:00Z", Date(), "wrong_type"),
    ("{ \"x\" = 1 }", IntKeyed(1, 9, Integer(0, 9)), "invalid_value"),
    ("{ \"10\" = 1 }", IntKeyed(1, 9, Integer(0, 9)), "invalid_value"),
    ("{ \"1\" = 10 }", IntKeyed(1, 9, Integer(0, 9)), "out_of_range"),
])
def test_exact_types_and_ranges(value: str, spec: Any, kind: str) -> None:
    t = table(f"[s]\nk = {value}\n")
    s = t.table("s")
    assert s is not None
    r = refusal(lambda: read_fields(s, [Field("k", spec, "")]))
    assert r.kind == kind, r
    assert r.field.startswith("s.k")


def test_good_values_read_into_typed_values() -> None:
    t = table('n = 20\nf = 2.5\nd = 2026-01-13\ni = 2026-12-01\nm = { "26100" = 4946 }\n'
              'c = "no"\nml = """\nline 1\nline 2\n"""\n')
    v = read_fields(t, [Field("n", Number(1, 120), ""), Field("f", Number(1, 120), ""),
                        Field("d", Date(), ""), Field("i", Instant(JST, allow_date=True), ""),
                        Field("m", IntKeyed(10240, 99999, Integer(0, 99999)), ""),
                        Field("c", Choice(("yes", "no")), ""),
                        Field("ml", Text(100, multiline=True), ""),
                        Field("absent", Integer(0, 1), "")])
    assert v["n"] == 20.0 and isinstance(v["n"], float) and v["f"] == 2.5
    assert v["d"] == date(2026, 1, 13)
    assert v["i"] == (datetime(2026, 11, 30, 15, 0, tzinfo=UTC), date(2026, 12, 1))
    assert v["m"] == {26100: 4946} and v["c"] == "no" and "absent" not in v
    t.done()


def test_unknown_keys_are_refused_with_their_full_path() -> None:
    t = table("[a.b]\nknown = 1\ntypo = 2\n")
    a = t.table("a")
    assert a is not None
    b = a.table("b")
    assert b is not None
    read_fields(b, [Field("known", Integer(0, 9), "")])
    r = refusal(b.done)
    assert (r.kind, r.field) == ("unknown_field", "a.b.typo")
    assert refusal(lambda: read_fields(b, [Field("needed", Integer(0, 9), "",
                                                 required=True)])).field == "a.b.needed"


def test_array_of_tables_bounds_and_row_paths() -> None:
    rows = TableArray((Field("x", Integer(0, 9), "", required=True),),
                      lambda _row, v: v["x"], max_items=2, min_items=1)
    t = table("[[r]]\nx = 1\n[[r]]\nx = 2\n")
    assert read_fields(t, [Field("r", rows, "")]) == {"r": (1, 2)}
    r = refusal(lambda: read_fields(table("[[r]]\nx = 1\n" * 3), [Field("r", rows, "")]))
    assert (r.kind, r.field) == ("out_of_range", "r")
    r = refusal(lambda: read_fields(table("[[r]]\nx = 1\n[[r]]\nx = 1\ny = 2\n"),
                                    [Field("r", rows, "")]))
    assert (r.kind, r.field) == ("unknown_field", "r[1].y")
    r = refusal(lambda: read_fields(table("r = [1]\n"), [Field("r", rows, "")]))
    assert (r.kind, r.field) == ("wrong_type", "r[0]")
    r = refusal(lambda: read_fields(table("r = []\n"), [Field("r", rows, "")]))
    assert (r.kind, r.field) == ("out_of_range", "r")


def test_a_text_check_turns_its_reason_into_invalid_value() -> None:
    def even(value: str) -> str:
        if len(value) % 2:
            raise ValueError("odd length")
        return value.upper()

    spec = Text(check=even, what="even text")
    assert read_fields(table('k = "ab"\n'), [Field("k", spec, "")]) == {"k": "AB"}
    r = refusal(lambda: read_fields(table('k = "abc"\n'), [Field("k", spec, "")]))
    assert (r.kind, r.field, r.detail) == ("invalid_value", "k", "odd length")
    assert spec.describe() == "even text"


def test_specs_describe_themselves_for_the_docs() -> None:
    assert Integer(0, 90).describe() == "integer 0..90"
    assert Number(1, 120).describe() == "number 1..120"
    assert Choice(("a", "b")).describe() == "`a` \\| `b`"
    assert Text(500).describe() == "text (≤ 500)"
    assert strict_toml.type_name(1.5) == "float"
