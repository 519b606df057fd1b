"""The batched Windows snapshot: command line, output handling, contract and a whole-PC fixture.

The script itself runs only on Windows (tests/platform/test_live_windows.py); here we check what
Linux can check: the exact command, every way its output can go wrong, and that the documented
contract, the script and the recorded fixture agree with each other.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.core.errors import CommandFailed, ParseError, ProbeTimeout, ToolMissing
from agent.posture import windows_snapshot
from agent.posture.engine import run_checks
from agent.posture.model import Status
from tests.conftest import FIXTURES, REPO
from tests.fakes import FakeRunner, Recorded, make_ctx

FIXTURE = FIXTURES / "windows" / "snapshot_windows11_pro_ja.json"
SECTIONS = ("os", "updates", "bitlocker", "antivirus", "firewall", "screen_lock")
# What SubprocessRunner puts in argv[0] on a real PC (it resolves the tool on PATH).
FULL_POWERSHELL = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"


def _fixture_bytes() -> bytes:
    return FIXTURE.read_bytes()


def _runner(stdout: bytes = b"", returncode: int = 0, stderr: bytes = b"") -> FakeRunner:
    return FakeRunner({("powershell.exe",): Recorded(stdout, returncode, stderr)})


def _strip_jsonc(text: str) -> str:
    """Remove // comments outside strings (the doc's example has 'windowsdefender://')."""
    out: list[str] = []
    for line in text.splitlines():
        in_string = escaped = False
        end = len(line)
        for i, ch in enumerate(line):
            if in_string:
                escaped = ch == "\\" and not escaped
                if ch == '"' and not escaped:
                    in_string = False
            elif ch == '"':
                in_string = True
            elif line.startswith("//", i):
                end = i
                break
        out.append(line[:end])
    return "\n".join(out)


def documented_example() -> dict[str, Any]:
    doc = (REPO / "docs" / "windows-snapshot.md").read_text(encoding="utf-8")
    block = re.search(r"```jsonc\n(.*?)```", doc, re.S)
    assert block, "docs/windows-snapshot.md lost its jsonc example"
    data: dict[str, Any] = json.loads(_strip_jsonc(block.group(1)))
    return data


# --- the command -------------------------------------------------------------------------------

def test_collect_runs_one_encoded_powershell_call() -> None:
    runner = _runner(_fixture_bytes())
    windows_snapshot.collect(runner)
    assert len(runner.calls) == 1
    argv = runner.calls[0]
    assert argv[:6] == ("powershell.exe", "-NoProfile", "-NonInteractive", "-ExecutionPolicy",
                        "Bypass", "-EncodedCommand")
    assert len(argv) == 7
    decoded = base64.b64decode(argv[6], validate=True).decode("utf-16-le")
    assert decoded == windows_snapshot.compact(windows_snapshot.script_source())


def test_compaction_keeps_every_line_of_code() -> None:
    source = windows_snapshot.script_source()
    code = [ln.strip() for ln in source.splitlines()
            if ln.strip() and not ln.strip().startswith("#")]
    assert windows_snapshot.compact(source).splitlines() == code
    # Nothing the compaction could break: no here-strings or block comments in the script.
    assert "@'" not in source and '@"' not in source and "<#" not in source


def test_command_line_fits_the_windows_limit_with_room_to_grow() -> None:
    argv = windows_snapshot.command()
    argv[0] = FULL_POWERSHELL
    length = windows_snapshot.command_line_length(argv)
    assert length < windows_snapshot.MAX_COMMAND_LINE
    # Leave a quarter of the budget so a new field does not silently break every Windows PC.
    assert length < 0.75 * windows_snapshot.MAX_COMMAND_LINE, length


def test_script_is_shipped_as_package_data() -> None:
    assert 'posture/*.ps1' in (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert windows_snapshot.script_source().startswith("# BYOD Agent Windows snapshot")


def test_script_writes_the_documented_fields() -> None:
    """Every key in the documented example is produced by name in the script."""
    script = windows_snapshot.script_source()
    missing: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "C:":  # a drive letter: data, not a field name
                    continue
                if not re.search(rf"(?<![\w]){re.escape(key)}(?![\w])", script):
                    missing.append(key)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(documented_example())
    assert missing == []
    assert "ConvertTo-Json -InputObject $snap -Depth 6 -Compress" in script
    assert "UTF8Encoding]::new($false)" in script
    assert "QueryHistory(0, $count)" in script and "100)" in script


# --- the output --------------------------------------------------------------------------------

def test_a_bom_before_the_json_is_tolerated() -> None:
    snap = windows_snapshot.collect(_runner(b"\xef\xbb\xbf" + _fixture_bytes()))
    assert snap["schema"] == 1


@pytest.mark.parametrize("stdout", [
    b"\xef\xbb\xbf",  # a BOM and nothing else
    "{\"schema\": 1}".encode("utf-16"),  # UTF-16 from a console that was never switched to UTF-8
    b"\x00\xff garbage {[ \xfe\n",
    b'{"schema": 1, "os": {"CurrentBuildNumber": "261',  # truncated
    b"",
    b"[1, 2]",
    b"Get-CimInstance : \x83A\x83N\x83Z\x83X\x82\xaa\x8b\x91\x94\xdb",  # cp932 error text
], ids=["bom-only", "utf16", "garbage", "truncated", "empty", "array", "cp932-text"])
def test_unreadable_output_is_a_parse_error(stdout: bytes) -> None:
    with pytest.raises(ParseError):
        windows_snapshot.collect(_runner(stdout))


@pytest.mark.parametrize("schema", [2, 0, "1", None, True, 1.5])
def test_other_schemas_are_refused(schema: object) -> None:
    data = json.loads(_fixture_bytes())
    data["schema"] = schema
    with pytest.raises(ParseError, match="schema"):
        windows_snapshot.collect(_runner(json.dumps(data).encode()))


def test_missing_schema_is_refused() -> None:
    data = json.loads(_fixture_bytes())
    del data["schema"]
    with pytest.raises(ParseError):
        windows_snapshot.collect(_runner(json.dumps(data).encode()))


def test_non_zero_exit_is_command_failed_even_with_json() -> None:
    stderr = "ConvertTo-Json : 何かが失敗しました\r\n".encode()
    with pytest.raises(CommandFailed) as info:
        windows_snapshot.collect(_runner(_fixture_bytes(), returncode=1, stderr=stderr))
    assert info.value.code == 1
    assert "何か" in info.value.detail


def test_missing_powershell_and_timeouts_pass_through() -> None:
    with pytest.raises(ToolMissing):
        windows_snapshot.collect(FakeRunner())

    def slow(argv: object) -> Recorded:
        raise ProbeTimeout("powershell.exe", 12)

    with pytest.raises(ProbeTimeout):
        windows_snapshot.collect(FakeRunner({("powershell.exe",): slow}))


def test_a_section_error_reaches_only_its_checks() -> None:
    data = json.loads(_fixture_bytes())
    data["bitlocker"] = {"error": "Access is denied."}
    snap = windows_snapshot.collect(_runner(json.dumps(data).encode()))
    ctx = make_ctx("windows", snapshot=snap)
    assert ctx.windows_section("os")["CurrentBuildNumber"] == "26100"
    from agent.core.errors import SourceMissing
    with pytest.raises(SourceMissing):
        ctx.windows_section("bitlocker")


# --- the fixture against the contract ------------------------------------------------------------

def _same_shape(doc: Any, got: Any, where: str, problems: list[str]) -> None:
    if doc is None or got is None:
        return  # documented as nullable, or null in this snapshot
    if isinstance(doc, dict):
        if not isinstance(got, dict):
            problems.append(f"{where}: object expected")
            return
        keys = set(doc) - {"C:"}
        problems += [f"{where}.{k}: missing" for k in sorted(keys - set(got))]
        for k in keys & set(got):
            _same_shape(doc[k], got[k], f"{where}.{k}", problems)
    elif isinstance(doc, list):
        if not isinstance(got, list):
            problems.append(f"{where}: array expected")
        elif doc:
            for i, item in enumerate(got):
                _same_shape(doc[0], item, f"{where}[{i}]", problems)
    elif type(doc) is not type(got):
        problems.append(f"{where}: {type(got).__name__} instead of {type(doc).__name__}")


def test_documented_example_is_itself_valid() -> None:
    example = documented_example()
    assert example["schema"] == windows_snapshot.SCHEMA
    assert windows_snapshot.parse(json.dumps(example).encode())["os"]["UBR"] == 4946


def test_fixture_has_the_documented_shape() -> None:
    data = json.loads(_fixture_bytes())
    assert data["_source"] and data["_citations"]
    problems: list[str] = []
    _same_shape(documented_example(), data, "$", problems)
    assert problems == []
    iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
    assert iso.match(data["collected_at"])
    assert all(iso.match(h["date"]) for h in data["updates"]["history"])
    assert iso.match(data["antivirus"]["defender"]["AntivirusSignatureLastUpdated"])
    assert re.search(r"[\u3040-\u30ff]", data["updates"]["history"][0]["title"])


def _fixture_snapshot() -> Mapping[str, Any]:
    return windows_snapshot.collect(_runner(_fixture_bytes()))


def test_fixture_drives_every_check_without_a_crash() -> None:
    snap = _fixture_snapshot()
    now = datetime(2025, 3, 12, 1, 30, tzinfo=UTC)  # the fixture's collected_at
    results = {r.id: r for r in run_checks(make_ctx("windows", snapshot=snap, now=now))}
    crashed = {cid: r.evidence for cid, r in results.items()
               if r.summary.key in ("probe.crashed", "probe.parse_error")}
    assert crashed == {}
    os_result = results["os_supported"]
    assert os_result.status is Status.PASS, os_result
    assert os_result.summary.key == "os_supported.supported"
    assert os_result.evidence["build"] == 26100 and os_result.evidence["ubr"] == 3476
    assert os_result.evidence["windows"] == "11"
    assert os_result.evidence["end_of_support"] == "2026-10-13"


def test_the_same_pc_after_its_release_ended_fails_os_supported() -> None:
    snap = _fixture_snapshot()
    later = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
    results = {r.id: r for r in run_checks(make_ctx("windows", snapshot=snap, now=later))}
    assert results["os_supported"].status is Status.FAIL
    assert results["os_supported"].summary.key == "os_supported.ended"


def test_fixture_path_is_inside_the_repo() -> None:
    assert Path(FIXTURE).is_file() and FIXTURE.is_relative_to(REPO)


# --- issue 17, finding 11: robustness ----------------------------------------------------------

def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "windows" / name).read_text("utf-8"))
    return data


def test_clixml_stderr_is_decoded_for_the_help_desk() -> None:
    rec = _fixture("powershell_stderr_clixml_ja.json")
    runner = FakeRunner({(windows_snapshot.POWERSHELL,): Recorded(b"", rec["exit"],
                                                               rec["stderr"].encode("utf-8"))})
    with pytest.raises(CommandFailed) as info:
        windows_snapshot.collect(runner)
    assert "CLIXML" not in info.value.detail and "<S" not in info.value.detail
    assert "CimException" in info.value.detail  # the last line of the decoded error
    text = windows_snapshot.decode_clixml(rec["stderr"])
    assert "アクセスが拒否されました。" in text and "\r\n" in text and "_x000D_" not in text


def test_clixml_garbage_never_raises() -> None:
    assert windows_snapshot.decode_clixml("#< CLIXML\r\n<Objs><S S=\"Error\">x_x000A_") == "x"
    assert windows_snapshot.decode_clixml("plain error") == "plain error"


def test_constrained_language_mode_is_a_clear_unknown_for_every_check() -> None:
    raw = _fixture("snapshot_constrained_language.json")["stdout"].encode()
    runner = FakeRunner({(windows_snapshot.POWERSHELL,): Recorded(raw, 0)})
    results = run_checks(make_ctx("windows", runner=runner))
    assert all(r.status is Status.UNKNOWN for r in results)
    assert {r.summary.key for r in results} == {"probe.windows_constrained_language"}
    assert results[0].summary.params["mode"] == "ConstrainedLanguage"


def test_the_script_checks_the_language_mode_before_anything_else() -> None:
    body = windows_snapshot.compact(windows_snapshot.script_source())
    assert body.splitlines()[0].startswith("if ($ExecutionContext.SessionState.LanguageMode")


def test_snapshot_budget_and_per_check_timeouts() -> None:
    from agent.posture.settings import PostureSettings
    s = PostureSettings(probe_timeout_s=12.0, snapshot_timeout_s=25.0,
                        check_timeouts_s={"antivirus": 30.0})
    assert s.check_timeout_s("antivirus") == 30.0 and s.check_timeout_s("firewall") == 25.0
    assert s.longest_budget_s() == 30.0
    seen: list[float | None] = []

    class _Runner(FakeRunner):
        def run(self, argv: Any, *, timeout: float | None = None,
                stdin: bytes | None = None) -> Any:
            seen.append(timeout)
            return super().run(argv, timeout=timeout, stdin=stdin)

    raw = _fixture("snapshot_constrained_language.json")["stdout"].encode()
    ctx = make_ctx("windows", runner=_Runner({(windows_snapshot.POWERSHELL,): Recorded(raw, 0)}),
                   settings=s)
    run_checks(ctx)
    assert seen == [25.0]  # one PowerShell call, with the snapshot's own budget


def test_a_slow_check_times_out_on_its_own_budget() -> None:
    import time as _time

    from agent.posture.settings import PostureSettings

    def slow(_ctx: Any) -> Any:
        _time.sleep(1.2)
        raise AssertionError("unreachable in time")

    def fast(_ctx: Any) -> Any:
        raise CommandFailed("x", 1)

    s = PostureSettings(probe_timeout_s=0.2, check_timeouts_s={"fast": 5.0})
    started = _time.monotonic()
    out = {r.id: r for r in run_checks(make_ctx("windows", settings=s),
                                       [("slow", slow), ("fast", fast)])}
    assert out["slow"].summary.key == "probe.timeout"
    assert out["slow"].summary.params["seconds"] == 0.2
    assert out["fast"].summary.key == "probe.command_failed"
    assert _time.monotonic() - started < 5.0
