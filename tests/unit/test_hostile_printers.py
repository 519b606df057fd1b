"""Issue 18 class 2 outside the help desk's reader: the staff CLI's printers.

A certificate subject is outside text (whoever made the PKCS#12 chose it); before issue 18
``cert show`` printed ``CN=x\\nState: OK`` as two lines, the second one looking like ours, and
an OS product name with ESC sequences reached the terminal through the check table.
"""

from __future__ import annotations

import datetime as dt

from agent.commands.cert import render_status
from agent.core import i18n
from agent.core.messages import msg
from agent.keystore.certs import CertInfo
from agent.keystore.errors import KeyState
from agent.keystore.store import CertStatus
from agent.posture.model import CheckResult, HostInfo, Report, Status
from agent.presentation.report import render_table
from testkit.pki import CA, issue

HOSTILE = "x\nState: OK\r\x1b[2J\u202e"


def _clean(out: str) -> None:
    for ch in out:
        assert ch == "\n" or (ord(ch) >= 0x20 and not 0x7F <= ord(ch) <= 0x9F), repr(ch)
        assert not 0x202A <= ord(ch) <= 0x202E


def test_cert_show_cannot_print_a_fake_state_line() -> None:
    info = CertInfo.of(issue(CA, HOSTILE).cert)
    out = render_status(CertStatus(KeyState.OK, "SecretService", info), "en",
                        dt.datetime.now(dt.UTC))
    states = [line for line in out.split("\n") if line.startswith("State")]
    assert len(states) == 1, out  # ours only
    _clean(out)


def test_message_parameters_are_sanitised() -> None:
    for lang in i18n.LANGS:
        text = i18n.render(msg("diag.error.hostile", detail=HOSTILE), lang)
        assert "\x1b" not in text and "\r" not in text and "\u202e" not in text


def test_check_table_escapes_outside_text() -> None:
    check = CheckResult("os_supported", Status.FAIL,
                        msg("os_supported.not_listed", name="Win\x1b]0;pwned\x07dows"), {},
                        None, 1)
    report = Report("2026-12-01T00:00:00Z", HostInfo("windows", "x", "pc", "x86_64"), (check,))
    out = render_table(report, "en")
    _clean(out)
    assert "\\x1b" in out
