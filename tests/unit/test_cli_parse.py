"""The command line in the user's language: argparse's words and errors, --lang anywhere, the
usage of the subcommand that was wrong, one meaning per exit code, OS errors in plain words."""

from __future__ import annotations

import argparse
import errno
import re
import types
from pathlib import Path

import pytest

from agent import cli
from agent.commands import tray
from agent.core import cliparse, clirun, exitcodes, i18n
from agent.core.errors import AgentError, Cancelled, os_reason
from agent.core.messages import msg
from agent.policy.errors import FetchFailed, PolicyRefused


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        cli.build_parser(next((a for a in argv if a in cli.COMMANDS), None),
                         clirun.lang_from_argv(argv, "ja")).parse_args(list(argv))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


@pytest.mark.parametrize(("lang", "usage", "options", "help_line"), [
    ("ja", "使い方: byod-agent", "オプション:", "このヘルプを表示して終了します"),
    ("en", "usage: byod-agent", "options:", "show this help and exit"),
])
def test_help_is_in_the_language_asked_for(capsys: pytest.CaptureFixture[str], lang: str,
                                           usage: str, options: str, help_line: str) -> None:
    code, out, _ = _run(capsys, "--lang", lang, "--help")
    assert code == 0
    assert out.startswith(usage) and options in out and help_line in out
    assert i18n.text("cli.check.help", lang) in out  # the subcommands' own help
    assert "70" in out and "141" in out  # the epilogue lists the exit codes


@pytest.mark.parametrize("argv", [
    ("--lang", "en", "cert", "show", "--help"),
    ("cert", "--lang", "en", "show", "--help"),
    ("cert", "show", "--lang", "en", "--help"),
    ("cert", "show", "--lang=en", "--help"),
])
def test_lang_is_accepted_before_and_after_the_subcommand(
        capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> None:
    code, out, _ = _run(capsys, *argv)
    assert code == 0
    assert out.startswith("usage: byod-agent cert show")
    assert "Exit codes: always 0" in out or "Exit codes" in out


@pytest.mark.parametrize("command", [
    ("check",), ("policy", "show"), ("policy", "update"), ("connect",), ("diag", "export"),
    ("diag", "show", "x"), ("diag", "mapping", "x"), ("cert", "show"), ("cert", "remove"),
    ("tray",),
])
def test_every_command_takes_lang_in_both_places(command: tuple[str, ...]) -> None:
    first = cli.build_parser(command[0], "ja").parse_args(["--lang", "en", *command])
    last = cli.build_parser(command[0], "ja").parse_args([*command, "--lang", "en"])
    assert first.lang == last.lang == "en"
    assert cli.build_parser(command[0], "ja").parse_args(list(command)).lang is None


def test_a_wrong_option_shows_the_usage_of_that_subcommand(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "cert", "show", "--bogus")
    assert code == exitcodes.USAGE
    assert err.startswith("使い方: byod-agent cert show ")
    assert "byod-agent cert show: エラー: 認識できない引数です: --bogus" in err
    code, _, err = _run(capsys, "diag", "export", "--level", "loud", "--lang", "en")
    assert code == exitcodes.USAGE
    assert err.startswith("usage: byod-agent diag export ")
    assert "argument --level: 'loud' is not one of the choices ('strict', 'standard')" in err


@pytest.mark.parametrize(("english", "japanese"), [
    ("the following arguments are required: --subject, --out",
     "次の引数が必要です: --subject, --out"),
    ("argument --lang: invalid choice: 'fr' (choose from 'ja', 'en')",
     "引数 --lang: 'fr' は選べません（次から選んでください: 'ja', 'en'）"),
    ("argument --recheck-seconds: invalid _seconds value: 'x'",
     "引数 --recheck-seconds: _seconds の値として正しくありません: 'x'"),
    ("argument --recheck-seconds: 1..86400",
     "引数 --recheck-seconds: 1〜86400 の秒数を指定してください"),
    ("argument --out: expected one argument", "引数 --out: 値を指定してください"),
    ("unrecognized arguments: --x --y", "認識できない引数です: --x --y"),
    ("ambiguous option: --pa could match --password-stdin, --platform",
     "あいまいなオプションです: --pa は --password-stdin, --platform のどれか分かりません"),
    ("something argparse never said", "something argparse never said"),  # passes through
])
def test_argparse_errors_are_translated(english: str, japanese: str) -> None:
    assert cliparse.translate_error(english, "ja") == japanese
    assert cliparse.translate_error(english, "en")  # never empty


def test_argparse_templates_are_the_ones_this_python_uses() -> None:
    """If a Python upgrade rewords argparse, this fails instead of English leaking through."""
    import argparse
    import inspect

    source = inspect.getsource(argparse)
    for template, _ in cliparse._TEMPLATES:
        if template == "1..86400":
            continue
        assert f"'{template}'" in source or f'"{template}"' in source, template


def test_missing_subcommand_is_named_by_its_choices(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "cert", "--lang", "en")
    assert code == exitcodes.USAGE
    assert "these arguments are required: {import,request,install,enroll,renew,show,remove}" \
        in err


def test_lang_from_argv() -> None:
    assert clirun.lang_from_argv(["check", "--lang", "en"], "ja") == "en"
    assert clirun.lang_from_argv(["--lang=ja", "check"], "en") == "ja"
    assert clirun.lang_from_argv(["--lang", "fr"], "ja") == "ja"  # argparse will say why
    assert clirun.lang_from_argv(["--", "--lang", "en"], "ja") == "ja"


def test_exit_codes_have_one_meaning_each() -> None:
    codes = {k: v for k, v in vars(exitcodes).items() if k.isupper()}
    assert len(set(codes.values())) == len(codes)
    assert exitcodes.INTERNAL not in (0, 1, 2, 3, 4, 5, 6)
    assert AgentError.exit_code == exitcodes.USAGE
    assert Cancelled.exit_code == exitcodes.CANCELLED
    assert FetchFailed(msg("policy.fetch.kept"), "x").exit_code == exitcodes.OFFLINE
    assert PolicyRefused(msg("policy.fetch.kept"), "x").exit_code == exitcodes.USAGE


def test_every_error_of_the_agent_derives_from_agent_error() -> None:
    from agent.attest.client import VerifierError
    from agent.attest.wire import WireError
    from agent.diagnostics.bundle import BundleError
    from agent.diagnostics.mapping import MappingError
    from agent.diagnostics.reader import HostileBundle
    from agent.keystore.errors import KeystoreError
    from agent.session.launch import SessionConfigError
    from agent.session.tunnel import TunnelError

    for cls in (PolicyRefused, FetchFailed, KeystoreError, SessionConfigError, TunnelError,
                HostileBundle, BundleError, MappingError, VerifierError, WireError):
        assert issubclass(cls, AgentError), cls
    assert i18n.render(HostileBundle("x.json: bad").message, "en").endswith("x.json: bad")
    assert "ポリシー" in i18n.render(SessionConfigError("host", "bad").message, "ja")


@pytest.mark.parametrize(("code", "ja"), [
    (errno.ENOENT, "ファイルまたはフォルダーがありません"), (errno.EACCES, "開く権限がありません"),
    (errno.ENOSPC, "ディスクの空き容量がありません"), (errno.EROFS, "ディスクが読み取り専用です"),
])
def test_os_errors_in_plain_words(code: int, ja: str) -> None:
    reason = i18n.render(os_reason(OSError(code, "English strerror")), "ja")
    assert reason == ja and "English" not in reason
    other = i18n.render(os_reason(OSError(errno.EXDEV, "Invalid cross-device link")), "ja")
    assert other == "システムエラー EXDEV"


def test_the_guard_maps_each_outcome(capsys: pytest.CaptureFixture[str]) -> None:
    def raise_(exc: BaseException) -> int:
        raise exc

    assert clirun.guarded(lambda: 0, "en", None) == 0
    assert clirun.guarded(lambda: raise_(PolicyRefused(msg("cli.cancelled"), "d")), "en",
                          None) == exitcodes.USAGE
    assert clirun.guarded(lambda: raise_(Cancelled()), "en", None) == exitcodes.CANCELLED
    assert clirun.guarded(lambda: raise_(KeyboardInterrupt()), "en", None) == 130
    assert clirun.guarded(lambda: raise_(EOFError()), "en", None) == exitcodes.CANCELLED
    assert clirun.guarded(lambda: raise_(ZeroDivisionError()), "en", None) == 70
    err = capsys.readouterr().err
    assert "Traceback" not in err and "ZeroDivisionError" not in err
    assert "Stopped (Ctrl-C)." in err and "could not be written" in err


def test_a_bare_command_with_a_display_says_it_started_the_tray(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    """README quick start, command 1 on a desktop: one line says the tray icon started."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    started: list[object] = []
    fake = types.ModuleType("fake_ui_app")
    fake.main = lambda lang, open_status: len(started.append(lang) or "")  # type: ignore[attr-defined,func-returns-value]
    monkeypatch.setitem(__import__("sys").modules, "fake_ui_app", fake)
    monkeypatch.setattr(tray, "UI_MODULE", "fake_ui_app")
    monkeypatch.setattr(tray, "ui_installed", lambda: True)
    monkeypatch.setattr(cli, "should_start_tray", lambda env: True)
    monkeypatch.setenv("DISPLAY", ":99")
    assert cli.main(["--lang", "en"]) == 0
    assert started == ["en"]
    assert "Starting the BYOD Agent tray icon" in capsys.readouterr().err


def _all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found += _all_parsers(sub)
    return found


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_help_page_is_translated(lang: str) -> None:
    """No catalogue key shown raw, no argparse English left in a Japanese page."""
    parsers = _all_parsers(cli.build_parser(None, lang))
    assert len(parsers) >= 15
    for parser in parsers:
        page = parser.format_help()
        assert not re.search(r"\bcli\.[a-z_.]+", page), (parser.prog, page)
        if lang == "ja":
            assert "usage:" not in page and "options:" not in page, parser.prog
            assert "show this help" not in page, parser.prog
        else:
            assert page.startswith("usage: ")


def test_every_option_help_is_a_catalogue_key() -> None:
    """Help text lives in resources/i18n/*/cli.json (help="cli.…"), never English in code."""
    english = []
    for parser in _all_parsers(cli.build_parser(None, "en")):
        for action in parser._actions:
            text = action.help
            if text in (None, argparse.SUPPRESS) or isinstance(action, argparse._SubParsersAction):
                continue
            if not (str(text).startswith("cli.") and str(text) in i18n.catalogue("en")):
                english.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}")
    assert english == []


@pytest.mark.parametrize(("detail", "ja"), [
    ("No such file or directory", "ファイルまたはフォルダーがありません"),
    ("[Errno 13] Permission denied: '/home/u/x.p12'",
     "開く権限がありません（対象: /home/u/x.p12）"),
])
def test_english_os_error_text_inside_a_japanese_sentence_is_translated(
        detail: str, ja: str) -> None:
    """Code that still passes exc.strerror or str(exc) into a message (policy loader, probes)."""
    sentence = i18n.text("policy.refused.unreadable", "ja", path="/p.toml", detail=detail)
    assert ja in sentence and "Errno" not in sentence and "No such" not in sentence
    assert i18n.text("x.unknown.key", "ja", detail=detail) == "x.unknown.key"
    assert i18n.text("policy.refused.unreadable", "ja", path="No such thing", detail="ok") \
        .count("No such thing") == 1  # only exact OS texts are replaced


def test_a_bare_lang_without_its_value_is_a_usage_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as info:  # argparse's usage error, exit 2
        cli.main(["--lang"])
    assert info.value.code == exitcodes.USAGE
    err = capsys.readouterr().err
    assert "--lang" in err and "check" not in err.splitlines()[-1]
