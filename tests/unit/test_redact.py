"""Redaction: secrets scrubbed, identifiers pseudonymized consistently, nothing else mangled."""

from __future__ import annotations

import pytest

from agent.diagnostics.redact import Redactor, my_number_valid, scrub_secrets


def _with_check_digit(body: str) -> str:
    total = sum(int(body[11 - n]) * (n + 1 if n <= 6 else n - 5) for n in range(1, 12))
    rest = total % 11
    return body + str(0 if rest <= 1 else 11 - rest)


VALID_MY_NUMBER = _with_check_digit("12345678901")


def test_my_number_check_digit() -> None:
    assert VALID_MY_NUMBER == "123456789018"
    assert my_number_valid(VALID_MY_NUMBER)
    wrong = VALID_MY_NUMBER[:-1] + str((int(VALID_MY_NUMBER[-1]) + 1) % 10)
    assert not my_number_valid(wrong)
    assert not my_number_valid("12345678901")  # 11 digits


@pytest.mark.parametrize(("planted", "gone"), [
    ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----", "MHcCAQEEIB"),
    ("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHzBJ\n-----END ENCRYPTED PRIVATE KEY-----",
     "MIIFHzBJ"),
    ("password=hunter2", "hunter2"),
    ('"passphrase": "correct horse"', "correct horse"),
    ("Authorization: Bearer eyJhbGciOi.eyJzdWIiOiIx.SflKxwRJSMeKKF2QT4", "SflKxwRJ"),
    ("Bearer abcdefghijklmnop", "abcdefghijklmnop"),
    ("https://taro:s3cret@gw.example.jp/", "s3cret"),
    ("api_key: AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("code=4/0AbCdEfGh1", "4/0AbCdEfGh1"),
    ('"code": "0.AXkA1b2c3d4e5f"', "0.AXkA1b2c3d4e5f"),
    ("oauth code = 'abc123def456' returned", "abc123def456"),
])
def test_secrets_are_scrubbed(planted: str, gone: str) -> None:
    assert gone not in Redactor().text(f"log line {planted} end")
    assert gone not in scrub_secrets(planted)


@pytest.mark.parametrize("line", [
    "    code = body()",  # a traceback's source line (the log showed "code = [REDACTED]")
    "    code = response.json()",
    "    code = codes[0]",
    "    code=self.code",
    "exit code = 0",
])
def test_code_is_a_secret_only_when_it_looks_like_an_oauth_code(line: str) -> None:
    assert scrub_secrets(line) == line
    assert "REDACTED" not in Redactor().text(line)


def test_identifiers_get_consistent_pseudonyms() -> None:
    r = Redactor(user_names=["yamada.taro", "山田 太郎"], host_names=["YAMADA-PC"])
    text = ("yamada.taro@city.example.lg.jp logged on yamada-pc from 192.168.10.23 "
            "(MAC 00-1A-2B-3C-4D-5E) C:\\Users\\yamada.taro\\AppData; again 192.168.10.23; "
            "fe80::1c2b:3aff:fe4d:5e6f; 電話 03-1234-5678, 携帯 090-1234-5678, +81 90 1234 5678; "
            f"個人番号 {VALID_MY_NUMBER}; 山田 太郎 さん")
    out = r.text(text)
    for secret in ("yamada", "YAMADA", "192.168.10.23", "00-1A-2B", "fe80::1c2b", "1234-5678",
                   "90 1234", VALID_MY_NUMBER, "山田", "city.example"):
        assert secret not in out, (secret, out)
    assert out.count("ip-1") == 2  # same address, same pseudonym
    assert "user-" in out and "host-1" in out and "mac-1" in out and "mynumber-1" in out


def test_useful_text_survives() -> None:
    r = Redactor(user_names=["taro"], host_names=["pc01"])
    text = ("Windows 10.0.26200.7171, Defender 1.421.512.0, at 12:30:45 on 2026-11-27, "
            "loopback 127.0.0.1 and ::1, build 26100, not a My Number 123456789012")
    assert r.text(text) == text


def test_obj_redacts_keys_and_nested_values() -> None:
    r = Redactor(user_names=["taro"])
    out = r.obj({"/home/taro": [{"who": "taro", "n": 3}], "ok": True})
    assert out == {"/home/user-1": [{"who": "user-1", "n": 3}], "ok": True}
