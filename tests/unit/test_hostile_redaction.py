"""Issue 18 class 4: the redactor's catalogue of secret shapes, as properties.

Each shape (gitleaks / detect-secrets / trufflehog rule it follows in agent/core/scrub.py) is
generated with random content and planted anywhere in a random log line; the secret part must
never survive, neither in the bundle redactor nor (for the secret shapes) in the log scrubber.
"""

from __future__ import annotations

import re
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.core.scrub import scrub_secrets
from agent.diagnostics.redact import Redactor

_BECH32 = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"
# Filler: what log lines are made of, without digits (so a planted number is the only one) and
# without '@' (no accidental e-mail around the secret).
FILLER = st.text(alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyzABCXYZ .,:;()[]{}/_-"
                                               "ネットワーク接続エラー山田")), max_size=40)
TOKEN = st.text(alphabet=st.sampled_from(list("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz"
                                              "0123456789_-")), min_size=12, max_size=40).map(
    lambda t: t[:-1] + "7")  # a digit: the filler (no digits) can never spell the token
DIGITS4 = st.text(alphabet=st.sampled_from(list("0123456789")), min_size=4, max_size=4)
PROFILE = settings(max_examples=150, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])


def _plant(left: str, secret: str, right: str) -> str:
    return f"{left} {secret} {right}"


def _gone(value: str, out: str) -> bool:
    return value not in out and unicodedata.normalize("NFKC", value) not in out


@PROFILE
@given(FILLER, FILLER, st.text(alphabet=st.sampled_from(list(_BECH32)), min_size=58,
                               max_size=58))
def test_age_secret_key(left: str, right: str, body: str) -> None:
    key = "AGE-SECRET-KEY-1" + body
    line = _plant(left, key, right)
    assert _gone(body, Redactor().text(line))
    assert _gone(body, scrub_secrets(line))


@PROFILE
@given(FILLER, FILLER, st.sampled_from(["access_token", "id_token", "refresh_token", "code",
                                        "sig", "X-Amz-Signature", "client_secret", "token"]),
       TOKEN, st.booleans())
def test_url_query_tokens(left: str, right: str, name: str, token: str, first: bool) -> None:
    url = (f"https://idp.example.jp/cb?{name}={token}&lang=ja" if first
           else f"https://idp.example.jp/cb?lang=ja&{name}={token}#frag")
    line = _plant(left, url, right)
    assert _gone(token, Redactor().text(line))
    assert _gone(token, scrub_secrets(line))


@PROFILE
@given(FILLER, FILLER, st.sampled_from(["Cookie: sid={t}; theme=dark",
                                        "Set-Cookie: session={t}; Path=/; HttpOnly",
                                        "set-cookie={t}", '"Cookie": "sid={t}"',
                                        "Authorization: Digest username=x, response={t}"]),
       TOKEN)
def test_cookie_headers(left: str, right: str, template: str, token: str) -> None:
    line = _plant(left, template.format(t=token), right)
    assert _gone(token, Redactor().text(line))
    assert _gone(token, scrub_secrets(line))


@PROFILE
@given(FILLER, FILLER, DIGITS4, DIGITS4,
       st.sampled_from(["090{s}{a}{s}{b}", "080{s}{a}{s}{b}", "03{s}{a}{s}{b}",
                        "+81{s}90{s}{a}{s}{b}", "(03){s}{a}{s}{b}"]),
       st.sampled_from(["-", " ", "－", "ー", " - ", "‐"]), st.booleans())
def test_phone_numbers_with_spaces_and_full_width(  # noqa: PLR0917 (one per strategy)
        left: str, right: str, a: str, b: str,
        template: str, sep: str, wide: bool) -> None:
    phone = template.format(s=sep, a=a, b=b)
    if wide:  # full-width digits as a Japanese IME types them
        phone = phone.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789+()"})
    out = Redactor().text(_plant(left, phone, right))
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", out))
    assert a + b not in digits and a not in digits and b not in digits, out


@PROFILE
@given(FILLER, st.text(alphabet=st.sampled_from(list("ABCDEFGHJKabcdefgh_-")), min_size=4,
                       max_size=16),
       st.sampled_from(['SSID: {n}', 'SSID 1 : {n}', '"ssid": "{n}"', "802-11-wireless.ssid:{n}",
                        "ESSID={n}", "network name = {n}"]))
def test_wifi_network_names(left: str, name: str, template: str) -> None:
    ssid = "WLAN" + name  # distinctive: the filler never spells it
    out = Redactor().text(left + " " + template.format(n=ssid))
    assert ssid not in out, out
    assert "ssid-1" in Redactor().text(template.format(n=ssid))  # a pseudonym, not a blank


@PROFILE
@given(FILLER, FILLER, st.text(alphabet=st.sampled_from(list("abcdefXYZ_")), min_size=1,
                               max_size=8),
       st.text(alphabet=st.sampled_from(list("0123456789")), min_size=7, max_size=14),
       st.text(alphabet=st.sampled_from(list("abcdefXYZ_")), max_size=8))
def test_digit_runs_inside_tokens_are_masked_whole(left: str, right: str, pre: str, digits: str,
                                                   post: str) -> None:
    token = pre + digits + post
    out = Redactor().text(_plant(left, token, right))
    assert digits not in out and token not in out, out
    assert "phone-" not in out and "mynumber-" not in out  # never half a token


@PROFILE
@given(FILLER, FILLER, st.sampled_from([
    "password={t}", 'passphrase: "{t}"', "api_key: {t}", "Bearer {t}",
    "-----BEGIN PRIVATE KEY-----\nMII{t}\n-----END PRIVATE KEY-----", "https://taro:{t}@gw.jp/",
    "client_secret={t}", "ghp_{t}{t}{t}", "xoxb-{t}"]), TOKEN)
def test_classic_secrets(left: str, right: str, template: str, token: str) -> None:
    line = _plant(left, template.format(t=token), right)
    assert _gone(token, Redactor().text(line))
    assert _gone(token, scrub_secrets(line))


def test_each_shape_on_todays_examples() -> None:
    """The concrete cases the adversarial pass found (each failed before issue 18)."""
    r = Redactor()
    cases = {
        "GET /cb?code=4/0AbCdEfGh&state=xyz": "4/0AbCdEfGh",
        "redirect https://x.jp/#access_token=ya29.a0AfB_byC": "ya29.a0AfB_byC",
        "id_token=eyJraWQiOi.abc": "eyJraWQiOi",
        "Set-Cookie: JSESSIONID=8F2A9C1B; Path=/": "8F2A9C1B",
        "Cookie: a=b; csrftoken=QWERTY12": "QWERTY12",
        "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQY": "QYQSZ",
        "tel 090 1234 5678": "1234 5678",
        "電話 ０９０－１２３４－５６７８": "１２３４",
        "SSID: Yamada-Home-5G": "Yamada-Home",
        "session ab09012345678cd": "09012345678",
    }
    for line, secret in cases.items():
        out = r.text(line)
        assert secret not in out and unicodedata.normalize("NFKC", secret) not in out, (line, out)


def test_useful_text_still_reads() -> None:
    r = Redactor(host_names=["pc01"])
    line = ("Windows 10.0.26200.7171 build 26100 at 12:30:45 on 2026-11-27, bundle "
            "byod-diag-K7QM4TXD-20261201T211450Z.zip, exit code 0, port 33890")
    out = r.text(line)
    assert "10.0.26200.7171" in out and "12:30:45" in out and "2026-11-27" in out
    assert "20261201T211450Z" in out and "33890" in out


@PROFILE
@given(st.text(alphabet=st.sampled_from(list("abcXYZ019_")), min_size=1, max_size=12),
       st.text(alphabet=st.sampled_from(list(_BECH32)), min_size=58, max_size=58))
def test_keys_glued_to_a_word_are_still_found(prefix: str, body: str) -> None:
    for secret, gone in ((f"AGE-SECRET-KEY-1{body}", body),
                         (f"-----BEGIN PRIVATE KEY-----\nMII{body}\n-----END PRIVATE KEY-----",
                          body)):
        assert _gone(gone, Redactor().text(prefix + secret))
        assert _gone(gone, scrub_secrets(prefix + secret))
