"""No traceback reaches a person: closed stdin, Ctrl-D and Ctrl-C at a real terminal, a closed
pipe, an unexpected exception, a tray with no display. Each runs ``byod-agent`` as a child process
with its own HOME (issue 19 item 1, issue 13 item 4; the codes are agent/core/exitcodes.py).

The terminal tests use a real pseudo-terminal (``os.openpty`` + ``os.login_tty`` in the child),
so ``getpass`` and ``input`` read from it exactly as they do in a staff member's terminal.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.core import exitcodes
from tests.conftest import REPO

TIMEOUT = 60.0


def _env(home: Path, lang: str = "en") -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "XDG_STATE_HOME": str(home / "state"), "XDG_DATA_HOME": str(home / "data"),
           "XDG_CONFIG_HOME": str(home / "config"), "TMPDIR": str(home),
           "BYOD_AGENT_LANG": lang, "LANG": "C.UTF-8"}
    home.mkdir(parents=True, exist_ok=True)
    return env


class Terminal:
    """A child on a real pseudo-terminal: what it prints, and keys typed into it."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path = REPO) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent", *args], env=env, cwd=cwd,
            preexec_fn=lambda: os.login_tty(slave), close_fds=True)  # noqa: PLW1509
        os.close(slave)
        self.out = b""

    def read_until(self, needle: bytes, timeout: float = TIMEOUT) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not shown; got {self.out[-800:]!r}")
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk and self.proc.poll() is not None:
                    raise AssertionError(f"{needle!r} not shown; got {self.out[-800:]!r}")
                self.out += chunk
        return self.out

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def finish(self) -> tuple[int, str]:
        """The exit code and everything shown; reads while waiting so the child never blocks."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            chunk = b""
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                self.out += chunk
            if not chunk and self.proc.poll() is not None:
                break
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"still running; shown: {self.out[-800:]!r}")
        os.close(self.master)
        return self.proc.wait(timeout=TIMEOUT), self.out.decode("utf-8", errors="replace")


@pytest.fixture
def p12_file(tmp_path: Path) -> Path:
    path = tmp_path / "city.p12"
    path.write_bytes(b"not read before the password is asked")
    return path


# -- stdin closed ----------------------------------------------------------------------------
def test_cert_import_with_stdin_at_dev_null_names_the_option(tmp_path: Path,
                                                             p12_file: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "agent", "cert", "import", str(p12_file)],
                          env=_env(tmp_path / "h"), cwd=REPO, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert proc.returncode == exitcodes.USAGE
    assert "--password-stdin" in proc.stderr and "no terminal" in proc.stderr
    assert "Traceback" not in proc.stderr and "GetPassWarning" not in proc.stderr


def test_cert_import_with_stdin_closed_entirely(tmp_path: Path, p12_file: Path) -> None:
    """fd 0 not open at all (sys.stdin is None in the child)."""
    proc = subprocess.run([sys.executable, "-m", "agent", "cert", "import", str(p12_file)],
                          env=_env(tmp_path / "h"), cwd=REPO, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False, stdin=subprocess.DEVNULL,
                          preexec_fn=lambda: os.close(0))
    assert proc.returncode == exitcodes.USAGE, proc.stderr
    assert "--password-stdin" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_password_stdin_at_eof_is_an_empty_password_not_a_crash(tmp_path: Path,
                                                                p12_file: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "agent", "cert", "import", str(p12_file),
                           "--password-stdin"], env=_env(tmp_path / "h"), cwd=REPO,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    assert proc.returncode == exitcodes.USAGE
    assert "Traceback" not in proc.stderr and proc.stderr.strip()


# -- a real terminal: Ctrl-D and Ctrl-C ------------------------------------------------------
def test_ctrl_d_at_the_certificate_password_prompt_cancels(tmp_path: Path,
                                                           p12_file: Path) -> None:
    term = Terminal(["cert", "import", str(p12_file)], _env(tmp_path / "h", "ja"))
    term.read_until("パスワード".encode())
    term.type(b"\x04")
    code, out = term.finish()
    assert code == exitcodes.CANCELLED, out
    assert "キャンセルしました" in out
    assert "Traceback" not in out and "EOFError" not in out


def test_ctrl_c_at_the_certificate_password_prompt_stops_quietly(tmp_path: Path,
                                                                 p12_file: Path) -> None:
    term = Terminal(["cert", "import", str(p12_file), "--lang", "en"], _env(tmp_path / "h"))
    term.read_until(b"assword")
    term.type(b"\x03")  # the terminal turns it into SIGINT, as a person's Ctrl-C does
    code, out = term.finish()
    assert code == exitcodes.INTERRUPTED, out
    assert "Stopped (Ctrl-C)." in out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out


def test_sigint_while_waiting_at_a_prompt(tmp_path: Path, p12_file: Path) -> None:
    term = Terminal(["cert", "import", str(p12_file)], _env(tmp_path / "h"))
    term.read_until(b"assword")
    term.proc.send_signal(signal.SIGINT)
    code, out = term.finish()
    assert code == exitcodes.INTERRUPTED
    assert "Traceback" not in out


@pytest.fixture(scope="module")
def export_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.mark.parametrize(("key", "code", "said"), [
    (b"\x04", exitcodes.CANCELLED, "Cancelled"),
    (b"\x03", exitcodes.INTERRUPTED, "Stopped (Ctrl-C)."),
    (b"n\r", exitcodes.CANCELLED, "Nothing was written"),
])
def test_the_export_consent_prompt(export_home: Path, key: bytes, code: int, said: str) -> None:
    """Ctrl-D, Ctrl-C and "no" at "Create the file?": no file, a sentence, a documented code."""
    out_dir = export_home / f"out-{code}-{key[0]}"
    out_dir.mkdir()
    term = Terminal(["diag", "export", "--out", str(out_dir), "--level", "strict"],
                    _env(export_home / f"h-{code}-{key[0]}"))
    term.read_until(b"[y/N]", timeout=120)
    term.type(key)
    rc, out = term.finish()
    assert rc == code, out
    assert said.lower() in out.lower()
    assert "Traceback" not in out
    assert list(out_dir.iterdir()) == []


def test_ctrl_d_at_a_line_prompt_in_any_command(tmp_path: Path) -> None:
    """The prompt the connect command uses for the user name (the session itself needs a PC
    that passes every check, which this VM does not; the same function asks for it)."""
    code = ("import sys; from agent.core import clirun, prompt; "
            "sys.exit(clirun.guarded(lambda: len(prompt.ask('User name: ', '--user')), "
            "'en', None))")
    env = _env(tmp_path / "h")
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=REPO,
                            preexec_fn=lambda: os.login_tty(slave))  # noqa: PLW1509
    os.close(slave)
    term = Terminal.__new__(Terminal)
    term.master, term.proc, term.out = master, proc, b""
    term.read_until(b"User name: ")
    term.type(b"\x04")
    rc, out = term.finish()
    assert rc == exitcodes.CANCELLED
    assert "Cancelled" in out and "Traceback" not in out


# -- a closed pipe ---------------------------------------------------------------------------
@pytest.mark.parametrize("args", [["--help"], ["policy", "show", "--json"], ["check", "--json"]])
def test_a_reader_that_goes_away_is_a_quiet_exit(tmp_path: Path, args: list[str]) -> None:
    """``byod-agent … | head -1`` where head has already exited: a real pipe, read end closed."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the agent writes
    proc = subprocess.run([sys.executable, "-m", "agent", *args], env=_env(tmp_path / "h"),
                          cwd=REPO, stdout=write_end, stderr=subprocess.PIPE, text=True,
                          timeout=120, check=False)
    os.close(write_end)
    assert proc.returncode == exitcodes.PIPE_CLOSED, proc.stderr
    assert proc.stderr == ""  # not even "Exception ignored ... BrokenPipeError"


def test_diag_show_into_a_closed_pipe(tmp_path: Path) -> None:
    """The case staff hit: ``byod-agent diag show BUNDLE | head``."""
    env = _env(tmp_path / "h")
    out = tmp_path / "bundles"
    out.mkdir()
    made = subprocess.run([sys.executable, "-m", "agent", "diag", "export", "--yes", "--level",
                           "strict", "--out", str(out)], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=180, check=False)
    assert made.returncode == 0, made.stderr
    bundle = next(p for p in out.iterdir() if p.suffix in (".zip", ".age"))
    read_end, write_end = os.pipe()
    os.close(read_end)
    proc = subprocess.run([sys.executable, "-m", "agent", "diag", "show", str(bundle)], env=env,
                          cwd=REPO, stdout=write_end, stderr=subprocess.PIPE, text=True,
                          timeout=120, check=False)
    os.close(write_end)
    assert proc.returncode == exitcodes.PIPE_CLOSED, proc.stderr
    assert proc.stderr == ""


def test_head_dash_1_on_a_real_shell_pipe(tmp_path: Path) -> None:
    proc = subprocess.run(["sh", "-c", f"'{sys.executable}' -m agent --help | head -1; "
                           "echo \"rc=${PIPESTATUS:-x}\""], env=_env(tmp_path / "h"), cwd=REPO,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert proc.stdout.startswith("usage: byod-agent")
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


# -- an unexpected exception -----------------------------------------------------------------
CRASH = """
import sys
import agent.commands.check as check

def boom(args):
    raise RuntimeError("simulated bug in a handler")

check.run = boom  # the handler argparse is given when the parser is built
from agent.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_an_unexpected_error_has_its_own_code_one_line_and_the_traceback_in_the_log(
        tmp_path: Path, lang: str) -> None:
    home = tmp_path / "h"
    proc = subprocess.run([sys.executable, "-c", CRASH, "check", "--lang", lang],
                          env=_env(home, lang), cwd=REPO, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    assert proc.returncode == exitcodes.INTERNAL == 70
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    log_path = next((home / "state").rglob("agent.log"))
    assert str(log_path) in lines[0]
    assert ("内部エラー" if lang == "ja" else "internal error") in lines[0]
    assert "Traceback" not in proc.stderr and "RuntimeError" not in proc.stderr
    entries = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines()]
    crash = [e for e in entries if e.get("level") == "error"]
    assert crash and "Traceback" in crash[-1]["exception"]
    assert "RuntimeError: simulated bug in a handler" in crash[-1]["exception"]


# -- the tray without a display --------------------------------------------------------------
def test_tray_without_a_display_says_so_and_exits_2(tmp_path: Path) -> None:
    pytest.importorskip("PySide6")
    env = _env(tmp_path / "h", "ja")
    proc = subprocess.run([sys.executable, "-m", "agent", "tray"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert proc.returncode == exitcodes.USAGE
    assert "画面" in proc.stderr and "byod-agent check" in proc.stderr
    assert "xcb" not in proc.stderr and "Traceback" not in proc.stderr
