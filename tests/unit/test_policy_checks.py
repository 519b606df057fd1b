"""The checks a policy adds: forbidden/required software, clock skew, agent version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent.core.errors import SourceMissing
from agent.policy import agent_version, clock, software
from agent.policy.model import ClockSkewRule, SoftwareRule
from agent.posture.context import ProcInfo
from agent.posture.engine import run_one
from agent.posture.model import Status
from tests.fakes import make_ctx

WINNY = SoftwareRule("Winny", ("winny.exe", "winny2.exe"), None, ("windows",))
SHARE = SoftwareRule("Share", ("share.exe",), None, ("windows",))
AV = SoftwareRule("City AV", ("cityav.exe", "cityav"), None)
SIGNED = SoftwareRule("City VPN", ("cityvpn.exe",), "CN=City of Example", ("windows",))


def procs(*names: str) -> list[ProcInfo]:
    return [ProcInfo(100 + n, name, f"C:\\Program Files\\X\\{name}", ())
            for n, name in enumerate(("explorer.exe", *names))]


def test_forbidden_software_found_case_insensitively() -> None:
    ctx = make_ctx("windows", processes=lambda: procs("WINNY.EXE", "svchost.exe"))
    f = software.check_forbidden(ctx, [WINNY, SHARE])
    assert f.status is Status.FAIL and f.remediation == "forbidden_software.remove"
    assert f.evidence["found"] == [{"name": "Winny", "processes": ["winny.exe"]}]
    assert "cmdline" not in str(f.evidence)


def test_forbidden_software_absent_and_other_os() -> None:
    ctx = make_ctx("windows", processes=lambda: procs("svchost.exe"))
    assert software.check_forbidden(ctx, [WINNY, SHARE]).status is Status.PASS
    linux = make_ctx("linux", processes=lambda: procs("winny.exe"))
    assert software.check_forbidden(linux, [WINNY]).status is Status.PASS  # Windows-only rule


@pytest.mark.parametrize("fault", ["raise", "empty"])
def test_unreadable_process_list_is_unknown(fault: str) -> None:
    def broken() -> list[ProcInfo]:
        if fault == "raise":
            raise PermissionError("denied")
        return []

    ctx = make_ctx("windows", processes=broken)
    for cid, fn in (("forbidden_software", lambda c: software.check_forbidden(c, [WINNY])),
                    ("required_software", lambda c: software.check_required(c, [AV]))):
        result = run_one(cid, fn, ctx)
        assert result.status is Status.UNKNOWN and result.summary.key == "probe.source_missing"


def test_required_software() -> None:
    running = make_ctx("linux", processes=lambda: procs("cityav"))
    assert software.check_required(running, [AV]).status is Status.PASS
    missing = make_ctx("linux", processes=lambda: procs("bash"))
    f = software.check_required(missing, [AV])
    assert f.status is Status.FAIL and f.evidence["missing"] == ["City AV"]
    # a signer cannot be confirmed from a process name: fail closed
    signed = make_ctx("windows", processes=lambda: procs("CityVPN.exe"))
    assert software.check_required(signed, [SIGNED]).status is Status.UNKNOWN


@pytest.mark.parametrize(("current", "minimum", "status"), [
    ("0.1.0", "0.1.0", Status.PASS), ("0.2.0", "0.1.5", Status.PASS),
    ("0.1.0", "0.1.1", Status.FAIL), ("1.2", "1.2.0", Status.PASS),
    ("0.0.0+src", "0.1.0", Status.FAIL), ("1.3.0rc1", "1.3", Status.PASS),
])
def test_agent_version(current: str, minimum: str, status: Status) -> None:
    assert agent_version.check_version(current, minimum).status is status


def test_agent_version_unparsable_is_unknown() -> None:
    r = run_one("agent_version", lambda _c: agent_version.check_version("dev", "1.0"),
                make_ctx())
    assert r.status is Status.UNKNOWN


RULE = ClockSkewRule(120, "https://gw.example.jp/", "PEM")


@pytest.mark.parametrize(("offset_s", "status"), [(0, Status.PASS), (-121, Status.PASS),
                                                  (300, Status.FAIL), (-600, Status.FAIL)])
def test_clock_skew(offset_s: int, status: Status) -> None:
    local = datetime(2026, 11, 27, 3, 0, 0, tzinfo=UTC)

    def probe(url: str, ca: str, timeout: float) -> tuple[datetime, datetime]:
        assert (url, ca) == ("https://gw.example.jp/", "PEM")
        return local - timedelta(seconds=offset_s), local

    f = clock.check_clock(make_ctx(), RULE, probe)
    assert f.status is status
    assert f.evidence["skew_seconds"] == offset_s


def test_clock_unreachable_or_no_reference_is_unknown() -> None:
    def offline(url: str, ca: str, timeout: float) -> tuple[datetime, datetime]:
        raise SourceMissing("gateway clock", "ConnectionError")

    assert run_one("clock_skew", lambda c: clock.check_clock(c, RULE, offline),
                   make_ctx()).status is Status.UNKNOWN
    none = ClockSkewRule(120, None, None)
    assert run_one("clock_skew", lambda c: clock.check_clock(c, none, offline),
                   make_ctx()).status is Status.UNKNOWN


@pytest.mark.parametrize("header", [None, "", "yesterday", "Thu, 99 Foo 2026 99:00:00 GMT"])
def test_bad_date_header_is_a_parse_error(header: str | None) -> None:
    from agent.core.errors import ParseError

    with pytest.raises(ParseError):
        clock.parse_http_date(header)


def test_date_header_parses() -> None:
    assert clock.parse_http_date("Fri, 27 Nov 2026 03:00:00 GMT") == datetime(
        2026, 11, 27, 3, 0, tzinfo=UTC)
