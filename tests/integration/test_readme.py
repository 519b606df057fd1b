"""The README's staff commands work as written: every ``byod-agent …`` line of its ``sh`` blocks
runs on a fresh home and exits with one of the codes written next to it ("(exit 0 or 1)").

Run in order, as a new staff member would: the ``city.p12`` the README names is made here (a test
CA's user certificate, password on stdin) and imported into a real Secret Service when one can be
started (else the import exits 2, which the README also lists); ``diag export`` runs on a real
pseudo-terminal and is answered "y", as a person would. Nothing is skipped: none of these lines
needs a display, and ``connect office-pc-demo --user yamada`` stops before any office PC is
contacted on a PC the demo policy blocks (exit 3) or without an RDP client (exit 2); where a PC is
allowed it would contact ``*.demo.invalid``, which cannot resolve (exit 4).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.pki import CA, issue, p12
from tests.conftest import REPO
from tests.integration import secret_service
from tests.integration.test_cli_robust import Terminal

README = REPO / "README.md"
_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.M | re.S)
_CODES = re.compile(r"\(exit ((?:\d+)(?:(?:, | or )\d+)*)\)")
PASSWORD = "市役所-README"
ANSWERS = {("diag", "export"): b"y\r"}  # asked at a terminal, answered as staff would
STDIN = {("cert", "import"): PASSWORD + "\n"}


def readme_commands() -> list[tuple[list[str], set[int], str]]:
    """(argv after ``byod-agent``, documented exit codes, the line) for every staff command."""
    found = []
    for block in _BLOCK.findall(README.read_text(encoding="utf-8")):
        for line in block.splitlines():
            if not line.startswith("byod-agent "):
                continue
            command, _, comment = line.partition("#")
            match = _CODES.search(comment)
            assert match, f"README line without its exit codes: {line!r}"
            codes = {int(c) for c in re.split(r", | or ", match.group(1))}
            found.append((shlex.split(command)[1:], codes, line))
    return found


def test_the_readme_names_its_commands_and_targets_that_exist() -> None:
    commands = readme_commands()
    assert len(commands) >= 10
    policy = (REPO / "resources/policy/demo-policy.toml").read_text(encoding="utf-8")
    targets = set(re.findall(r'^id = "([^"]+)"', policy, re.M))
    for argv, _, line in commands:
        if argv[0] == "connect" and len(argv) > 1 and not argv[1].startswith("-"):
            assert argv[1] in targets, line


@contextlib.contextmanager
def _fresh_home(tmp: Path) -> Iterator[dict[str, str]]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
            "BYOD_AGENT_LANG": "ja", "TMPDIR": str(tmp)}
    home = tmp / "home"
    if secret_service.available():
        with secret_service.running(home) as ss:
            yield {**base, **ss.env()}
        return
    home.mkdir()
    yield {**base, "HOME": str(home), "XDG_STATE_HOME": str(home / "state"),
           "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config")}


def test_every_staff_command_of_the_readme_runs_as_written(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "city.p12").write_bytes(p12(issue(CA, "Yamada Taro"), PASSWORD.encode(),
                                        extra=(CA.cert,)))
    agent = [sys.executable, "-m", "agent"]
    failures = []
    seen: dict[tuple[str, ...], tuple[int, str]] = {}
    with _fresh_home(tmp_path) as env:
        for argv, codes, line in readme_commands():
            key = tuple(argv[:2])
            if key in ANSWERS:
                term = Terminal(argv, env, cwd=work)
                term.read_until(b"[y/N]", timeout=120)
                term.type(ANSWERS[key])
                code, out = term.finish()
                err = out
            else:
                proc = subprocess.run([*agent, *argv], env=env, cwd=work, capture_output=True,
                                      text=True, input=STDIN.get(key, ""), timeout=180,
                                      check=False)
                code, out, err = proc.returncode, proc.stdout, proc.stderr
            if code not in codes or "Traceback" in out + err or not (out + err).strip():
                failures.append(f"{line}\n  -> exit {code}\n  {(out + err)[-600:]}")
            seen[key] = (code, out + err)
        exported = list(work.glob("*.zip")) + list(work.glob("*.age"))
    assert failures == [], "\n".join(failures)
    assert exported, "diag export answered 'y' wrote no file"
    if secret_service.available():  # a real keyring: the README's import really imports
        assert seen[("cert", "import")][0] == 0, seen[("cert", "import")]
        assert "Yamada Taro" in seen[("cert", "show")][1]
        assert "証明書がありませんでした" not in seen[("cert", "remove")][1]


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_readme_exit_code_table_matches_the_code(lang: str) -> None:
    from agent.core import exitcodes, i18n

    text = README.read_text(encoding="utf-8")
    table = set(re.findall(r"^\| (\d+) \|", text, re.M))
    codes = {str(v) for k, v in vars(exitcodes).items() if k.isupper()}
    assert table == codes
    epilog = i18n.text("cli.epilog", lang)
    assert all(c in epilog for c in codes)
