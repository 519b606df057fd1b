"""User -> office PC assignments: the CSV IT keeps (``user,pc,host,port``) and its checks."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from verifier.db import Assignment
from verifier.messages import PC_RE, USER_RE

HEADER = ("user", "pc", "host", "port")
_HOST_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]")


class AssignmentError(ValueError):
    pass


def check(user: str, pc: str, host: str, port: str | int) -> Assignment:
    if not USER_RE.fullmatch(user):
        raise AssignmentError(f"user {user[:70]!r}: letters, digits and ._@- only")
    if not PC_RE.fullmatch(pc):
        raise AssignmentError(f"pc {pc[:70]!r}: letters, digits and _.- only")
    if not host or len(host) > 253 or set(host) - _HOST_OK:
        raise AssignmentError(f"host {host[:70]!r} is not a host name or address")
    try:
        number = int(port)
    except (TypeError, ValueError):
        raise AssignmentError(f"port {str(port)[:10]!r} is not a number") from None
    if not 0 < number < 65536:
        raise AssignmentError(f"port {number} out of range")
    return Assignment(user, pc, host, number)


def parse_csv(text: str) -> list[Assignment]:
    """Every row checked; a user twice is an error (which PC would win is not obvious)."""
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    if not rows or tuple(c.strip().lower() for c in rows[0]) != HEADER:
        raise AssignmentError("the first line must be: user,pc,host,port")
    out: list[Assignment] = []
    seen: set[str] = set()
    for n, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 4:
            raise AssignmentError(f"line {n}: expected 4 columns, found {len(row)}")
        try:
            a = check(*(c.strip() for c in row))
        except AssignmentError as exc:
            raise AssignmentError(f"line {n}: {exc}") from None
        if a.user in seen:
            raise AssignmentError(f"line {n}: user {a.user} appears twice")
        seen.add(a.user)
        out.append(a)
    return out


def to_csv(assignments: Iterable[Assignment]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    for a in assignments:
        w.writerow((a.user, a.pc_id, a.host, a.port))
    return buf.getvalue()
