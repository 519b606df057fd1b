"""One definition per policy section drives the parser, the posture settings and the docs table;
the Windows patch table and the time budgets come from the signed policy into the real checks."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from datetime import UTC, date, datetime
from typing import Any

import pytest

from agent.core.paths import resources_dir
from agent.core.strict_toml import Field, Number
from agent.policy import schema
from agent.policy.checks import posture_settings
from agent.policy.errors import PolicyRefused
from agent.policy.schema import merge_patches, parse_policy
from agent.posture import windows_snapshot
from agent.posture.checks.firewall import check as firewall
from agent.posture.checks.os_updates import check as os_updates
from agent.posture.checks.os_updates.windows_patches import WINDOWS_PATCHES, WindowsPatch
from agent.posture.engine import run_checks
from agent.posture.model import Status
from agent.posture.settings import PostureSettings
from tests.conftest import FIXTURES
from tests.fakes import FakeRunner, Recorded, make_ctx
from tests.unit.test_policy_support import policy_text

DOCS = resources_dir().parent / "docs" / "policy.md"


def _policy(extra: str = "", os_updates_keys: str = "") -> Any:
    text = policy_text(extra=extra).replace("[checks.os_updates]\n",
                                            "[checks.os_updates]\n" + os_updates_keys)
    return parse_policy(text.encode())


def _refused(extra: str = "", os_updates_keys: str = "") -> PolicyRefused:
    with pytest.raises(PolicyRefused) as info:
        _policy(extra, os_updates_keys)
    return info.value


# --- one source of truth ----------------------------------------------------------------------


def test_docs_table_is_the_one_the_definitions_print() -> None:
    text = DOCS.read_text("utf-8")
    begin, end = text.index(schema.DOCS_BEGIN), text.index(schema.DOCS_END)
    assert text[begin:end + len(schema.DOCS_END)] == schema.docs_tables(), (
        "docs/policy.md is out of date: paste `python -m agent.policy.schema` into it")


def test_the_docs_check_can_fail() -> None:
    """Positive control: a key added to the definitions shows up in the generated table."""
    extra = schema.Key(Field("made_up_s", Number(1, 2), "made up"),
                       setting="probe_timeout_s")
    changed = dataclasses.replace(schema.POSTURE, keys=(*schema.POSTURE.keys, extra))
    table = schema.docs_tables({**schema.SECTIONS, "posture": changed})
    assert "made_up_s" in table and table != schema.docs_tables()
    assert "made_up_s" not in schema.docs_tables()


def test_every_setting_a_key_names_exists_with_the_type_the_key_reads() -> None:
    fields = {f.name: f for f in dataclasses.fields(PostureSettings)}
    named = [(s.path, k) for s in schema.SECTIONS.values() for k in s.keys if k.setting]
    assert {k.setting for _, k in named} >= {
        "max_pending_security_updates", "max_days_since_update", "windows_min_ubr",
        "macos_min_version", "windows_patches", "check_timeouts_s", "probe_timeout_s",
        "snapshot_timeout_s", "max_av_signature_age_days", "max_xprotect_age_days",
        "max_screen_lock_idle_s", "windows_patch_grace_days",
        "windows_patch_table_max_age_days"}
    for _path, key in named:
        assert key.setting in fields, key.setting
    # A policy that sets every such key: the settings hold values of the defaults' types.
    p = _policy(
        extra=('[checks.antivirus]\nmax_signature_age_days = 2\nmax_xprotect_age_days = 20\n'
               'timeout_s = 20\n[posture]\nprobe_timeout_s = 15\nsnapshot_timeout_s = 30.5\n'
               '[[checks.os_updates.windows_patches]]\nbuild = 26100\nubr = 7623\n'
               'month = "2026-01"\nkb = "KB5074109"\nsource = "test value"\n'),
        os_updates_keys=('max_pending_security_updates = 2\nwindows_patch_grace_days = 5\n'
                         'windows_patch_table_max_age_days = 90\n'
                         'macos_min_version = { "15" = "15.6.1" }\n'))
    s, d = posture_settings(p), PostureSettings()
    for name in {k.setting for _, k in named if k.setting}:
        value, default = getattr(s, name), getattr(d, name)
        assert value != default, name  # the policy really changed it
        assert isinstance(value, type(default) if default is not None else float), name
    assert s.check_timeouts_s == {"antivirus": 20.0} and s.snapshot_timeout_s == 30.5
    assert s.max_screen_lock_idle_s == 600 and s.max_days_since_update == 30


def test_demo_policy_keeps_the_built_in_settings_for_what_it_does_not_name() -> None:
    demo = parse_policy((resources_dir() / "policy" / "demo-policy.toml").read_bytes())
    s = posture_settings(demo)
    assert s.windows_patches == WINDOWS_PATCHES and s.check_timeouts_s == {}
    assert s.snapshot_timeout_s is None and s.probe_timeout_s == PostureSettings().probe_timeout_s


# --- the Windows patch table through the policy ---------------------------------------------------

# Test values, not Microsoft's: each test names what it needs.
ROW = ('[[checks.os_updates.windows_patches]]\nbuild = {build}\nubr = {ubr}\nmonth = "{month}"\n'
       'kb = "{kb}"\nsource = "test value"\n{more}')


def _rows(*rows: tuple[int, int, str, str] | tuple[int, int, str, str, str]) -> str:
    return "".join(ROW.format(build=r[0], ubr=r[1], month=r[2], kb=r[3],
                              more=r[4] if len(r) > 4 else "") for r in rows)


def test_patch_rows_parse_with_the_second_tuesday_by_default() -> None:
    p = _policy(_rows((26100, 7623, "2026-01", "kb5074109"),
                      (26200, 7623, "2026-01", "KB5074109", "release = 2026-01-14\n")))
    rows = p.values["checks.os_updates"]["windows_patches"]
    assert rows == (WindowsPatch(26100, 7623, date(2026, 1, 13), "KB5074109"),
                    WindowsPatch(26200, 7623, date(2026, 1, 14), "KB5074109"))


def test_policy_rows_win_for_their_month_and_the_shipped_table_keeps_the_others() -> None:
    fix = WindowsPatch(26100, 7400, date(2025, 12, 9), "KB5072033")
    new = WindowsPatch(26100, 7623, date(2026, 1, 13), "KB5074109")
    merged = merge_patches(WINDOWS_PATCHES, (fix, new))
    dec = [p for p in merged if p.build == 26100 and p.released.month == 12]
    assert dec == [fix]  # the shipped December row is replaced
    assert new in merged
    # Every shipped row of another (build, month) stays; 26200's December is another build.
    others = [p for p in WINDOWS_PATCHES
              if not (p.build == 26100 and (p.released.year, p.released.month) == (2025, 12))]
    assert set(others) <= set(merged) and len(merged) == len(WINDOWS_PATCHES) + 1
    s = posture_settings(_policy(_rows((26100, 7400, "2025-12", "KB5072033"),
                                       (26100, 7623, "2026-01", "KB5074109"))))
    assert s.windows_patches == merged


@pytest.mark.parametrize(("rows", "reason", "field"), [
    (_rows((26100, 1, "2026-01", "KB5074109"), (26100, 2, "2026-01", "KB5074110")),
     "invalid_value", "checks.os_updates.windows_patches[1].month"),
    (_rows((26100, 1, "2026-01", "KB5074109", "release = 2026-02-10\n")), "invalid_value",
     "checks.os_updates.windows_patches[0].release"),
    (_rows((26100, 1, "2026-13", "KB5074109")), "invalid_value",
     "checks.os_updates.windows_patches[0].month"),
    (_rows((26100, 1, "2026-01", "5074109")), "invalid_value",
     "checks.os_updates.windows_patches[0].kb"),
    (_rows((999, 1, "2026-01", "KB5074109")), "out_of_range",
     "checks.os_updates.windows_patches[0].build"),
    (_rows((26100, 1, "2026-01", "KB5074109", "kbs = 1\n")), "unknown_field",
     "checks.os_updates.windows_patches[0].kbs"),
    (_rows((26100, 1, "2026-01", "KB5074109", "release = 2026-01-13T00:00:00Z\n")),
     "wrong_type", "checks.os_updates.windows_patches[0].release"),
    (_rows((26100, 1, "2026-01", "KB5074109")).replace('source = "test value"\n', ""),
     "missing_field", "checks.os_updates.windows_patches[0].source"),
    (_rows((26100, 1, "2026-01", "KB5074109")) * 501, "out_of_range",
     "checks.os_updates.windows_patches"),
])
def test_bad_patch_rows_are_refused_by_path(rows: str, reason: str, field: str) -> None:
    exc = _refused(rows)
    assert (exc.reason, exc.message.params.get("field")) == (reason, field), exc.detail


def _failing_snapshot(ubr: int) -> dict[str, Any]:
    snap: dict[str, Any] = json.loads(
        (FIXTURES / "os_updates" / "win11_24h2_ja_cu_failing_dotnet_ok.json").read_text("utf-8"))
    snap["os"]["UBR"] = ubr
    snap["updates"]["history"] = snap["updates"]["history"][:2]  # recent, successful entries
    return snap


def test_the_check_judges_by_a_row_the_policy_corrected() -> None:
    """26100.7420 on 5 January 2026: the shipped December row (7462) fails it; a policy whose
    December row says 7400 (a correction, test value) makes the same PC pass."""
    now = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
    shipped = os_updates.check(make_ctx("windows", snapshot=_failing_snapshot(7420), now=now,
                                        settings=posture_settings(_policy())))
    assert shipped.status is Status.FAIL and shipped.summary.params["required"] == "26100.7462"
    s = posture_settings(_policy(_rows((26100, 7400, "2025-12", "KB5072033"))))
    fixed = os_updates.check(make_ctx("windows", snapshot=_failing_snapshot(7420), now=now,
                                      settings=s))
    assert fixed.status is Status.PASS, fixed.summary
    assert fixed.evidence["patch_required"]["ubr"] == 7400


def test_the_check_judges_by_a_month_only_the_policy_has() -> None:
    """In March 2026 the shipped table (newest: December 2025) is out of date and cannot judge;
    with the policy's January-March rows (test values) 26100.7462 is behind March's release."""
    now = datetime(2026, 3, 25, 3, 0, tzinfo=UTC)
    snap = _failing_snapshot(7462)
    alone = os_updates.check(make_ctx("windows", snapshot=snap, now=now,
                                      settings=posture_settings(_policy())))
    assert alone.evidence["patch_table"] == "out of date"
    s = posture_settings(_policy(_rows((26100, 7623, "2026-01", "KB5074109"),
                                       (26100, 7840, "2026-02", "KB5077181"),
                                       (26100, 8037, "2026-03", "KB5079473"))))
    f = os_updates.check(make_ctx("windows", snapshot=snap, now=now, settings=s))
    assert f.status is Status.FAIL and f.summary.key == "os_updates.windows.behind"
    assert (f.summary.params["required"], f.summary.params["kb"]) == ("26100.8037", "KB5079473")
    assert f.evidence["patch_table"] == "used"


# --- time budgets through the policy ------------------------------------------------------------


@pytest.mark.parametrize(("keys", "reason", "field"), [
    ("timeout_s = 0\n", "out_of_range", "checks.os_updates.timeout_s"),
    ("timeout_s = 121\n", "out_of_range", "checks.os_updates.timeout_s"),
    ("timeout_s = nan\n", "out_of_range", "checks.os_updates.timeout_s"),
    ("timeout_s = inf\n", "out_of_range", "checks.os_updates.timeout_s"),
    ("timeout_s = true\n", "wrong_type", "checks.os_updates.timeout_s"),
    ("timeout_s = \"5\"\n", "wrong_type", "checks.os_updates.timeout_s"),
])
def test_check_timeouts_are_bounded(keys: str, reason: str, field: str) -> None:
    exc = _refused(os_updates_keys=keys)
    assert (exc.reason, exc.message.params.get("field")) == (reason, field), exc.detail


@pytest.mark.parametrize(("extra", "reason", "field"), [
    ("[posture]\nsnapshot_timeout_s = 0.5\n", "out_of_range", "posture.snapshot_timeout_s"),
    ("[posture]\nprobe_timeout_s = 600\n", "out_of_range", "posture.probe_timeout_s"),
    ("[posture]\nsnapshot_budget = 5\n", "unknown_field", "posture.snapshot_budget"),
    ("[posture]\nenforce = \"off\"\n", "unknown_field", "posture.enforce"),
    ("[checks.firewall]\ntimeout_s = -1\n", "out_of_range", "checks.firewall.timeout_s"),
])
def test_posture_budgets_are_bounded(extra: str, reason: str, field: str) -> None:
    exc = _refused(extra)
    assert (exc.reason, exc.message.params.get("field")) == (reason, field), exc.detail


def test_timeouts_from_the_policy_reach_the_settings() -> None:
    p = _policy("[checks.firewall]\ntimeout_s = 3\n[posture]\nprobe_timeout_s = 8\n"
                "snapshot_timeout_s = 25\n", os_updates_keys="timeout_s = 40\n")
    s = posture_settings(p)
    assert s.check_timeouts_s == {"os_updates": 40.0, "firewall": 3.0}
    assert (s.probe_timeout_s, s.snapshot_timeout_s) == (8.0, 25.0)
    assert s.check_timeout_s("os_updates") == 40.0
    assert s.check_timeout_s("firewall") == 25.0  # a Windows check waits for the snapshot
    assert s.check_timeout_s("antivirus") == 25.0
    assert s.longest_budget_s() == 40.0
    assert not math.isnan(s.longest_budget_s())


def test_the_policy_snapshot_budget_is_what_powershell_gets() -> None:
    """The real checks on Windows, the snapshot through a runner that records its timeout."""
    seen: list[float | None] = []

    class _Runner(FakeRunner):
        def run(self, argv: Any, *, timeout: float | None = None,
                stdin: bytes | None = None) -> Any:
            seen.append(timeout)
            return super().run(argv, timeout=timeout, stdin=stdin)

    snap = json.dumps(_failing_snapshot(7462)).encode()
    s = posture_settings(_policy("[posture]\nsnapshot_timeout_s = 37\n"))
    ctx = make_ctx("windows", settings=s,
                   runner=_Runner({(windows_snapshot.POWERSHELL,): Recorded(snap, 0)}))
    results = run_checks(ctx, [("os_updates", os_updates.check), ("firewall", firewall.check)])
    assert seen == [37.0]  # one PowerShell call for both checks, with the policy's budget
    assert all(r.summary.key != "probe.timeout" for r in results)


def test_a_check_times_out_on_the_policy_budget_and_another_waits_longer() -> None:
    """A snapshot that takes 1.6 s: firewall (policy: 1 s, snapshot budget 1 s) is unknown on
    its own budget; os_updates (policy: 5 s) waits and reads the same snapshot."""
    def slow_snapshot() -> Any:
        time.sleep(1.6)
        return _failing_snapshot(7462)

    s = posture_settings(_policy("[checks.firewall]\ntimeout_s = 1\n[posture]\n"
                                 "probe_timeout_s = 1\nsnapshot_timeout_s = 1\n",
                                 os_updates_keys="timeout_s = 5\n"))
    ctx = make_ctx("windows", settings=s, snapshot=slow_snapshot,
                   now=datetime(2026, 1, 5, 3, 0, tzinfo=UTC))
    started = time.monotonic()
    out = {r.id: r for r in run_checks(ctx, [("os_updates", os_updates.check),
                                             ("firewall", firewall.check)])}
    assert out["firewall"].status is Status.UNKNOWN
    assert out["firewall"].summary.key == "probe.timeout"
    assert out["firewall"].summary.params["seconds"] == 1.0
    assert out["os_updates"].summary.key != "probe.timeout", out["os_updates"].summary
    assert out["os_updates"].evidence["patch_table"] == "used"
    assert time.monotonic() - started < 5.0


def test_the_complete_example_in_the_docs_is_a_valid_policy() -> None:
    """docs/policy.md's example with its placeholders filled (a real CA PEM, an age recipient)."""
    text = DOCS.read_text("utf-8")
    example = text[text.index("## A complete example"):]
    example = example[example.index("```toml\n") + 8:]
    example = example[:example.index("```\n")]
    demo = (resources_dir() / "policy" / "demo-policy.toml").read_text("utf-8")
    pem = demo[demo.index("-----BEGIN CERTIFICATE-----"):
               demo.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    filled = re.sub(r"-----BEGIN CERTIFICATE-----\n.*?\n-----END CERTIFICATE-----", pem,
                    example, flags=re.DOTALL).replace('"age1..."', '"age1' + "q" * 58 + '"')
    p = parse_policy(filled.encode())
    s = posture_settings(p)
    assert s.check_timeouts_s == {"os_updates": 30.0} and s.snapshot_timeout_s == 25.0
    assert WindowsPatch(26100, 7623, date(2026, 1, 13), "KB5074109") in s.windows_patches
    assert len(p.targets) == 2 and p.rule("screen_lock").enforce.value == "warn"
