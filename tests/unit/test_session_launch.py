"""Launch plans: every redirection off, no saved credentials, no injection through the policy."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent.policy.model import RdGateway, Target
from agent.session.launch import (
    DEFAULT_CLIENTS,
    ClientInfo,
    SessionConfigError,
    plan,
    rdp_file_text,
)

TUNNEL = Target("office", "職場のPC", "Office PC", "rdp", "tunnel", "pc-0123.office.city.example",
                3389, "gw.city.example", 443, None, None)
DIRECT = replace(TUNNEL, mode="direct", gateway_host=None, gateway_port=None)
RDGW = replace(TUNNEL, mode="rdgateway", rd_gateway=RdGateway(1, 4, True))


@pytest.mark.parametrize("platform", ["windows", "macos", "linux"])
@pytest.mark.parametrize("target", [TUNNEL, DIRECT, RDGW], ids=["tunnel", "direct", "rdgw"])
def test_every_redirection_is_off(platform: str, target: Target) -> None:
    p = plan(target, platform, DEFAULT_CLIENTS[platform], local_port=50123)
    assert p.redirections and not any(p.redirections.values())
    joined = " ".join(p.argv)
    assert "/p:" not in joined and "cert:ignore" not in joined and "cert-ignore" not in joined
    if p.rdp_properties is not None:
        props = p.rdp_properties
        for key in ("redirectclipboard:i", "redirectdrives:i", "redirectprinters:i",
                    "redirectcomports:i", "redirectsmartcards:i", "redirectwebauthn:i",
                    "redirectlocation:i", "audiocapturemode:i", "redirectposdevices:i"):
            assert props[key] == "0", key
        for key in ("drivestoredirect:s", "devicestoredirect:s", "usbdevicestoredirect:s",
                    "camerastoredirect:s"):
            assert props[key] == "", key
        assert props["prompt for credentials:i"] == "1"
        assert "password 51:b" not in props and "username:s" not in props
    else:
        assert "-clipboard" in p.argv and "/sec:nla" in p.argv
        assert not any(a.startswith(("+drives", "/drive", "/printer", "/smartcard", "/usb",
                                     "/microphone", "/serial", "/parallel", "+clipboard"))
                       for a in p.argv)


def test_tunnel_connects_to_loopback_with_sni_of_the_office_pc() -> None:
    p = plan(TUNNEL, "linux", DEFAULT_CLIENTS["linux"], local_port=50123)
    assert p.connect_to == "127.0.0.1:50123"
    assert p.tunnel is not None and p.tunnel["sni"] == TUNNEL.host
    assert p.tunnel["gateway"] == "gw.city.example:443"
    # the office PC's certificate is still checked, by name, and a failure aborts (no prompt)
    assert f"/cert:deny,name:{TUNNEL.host}" in p.argv


PIN = ":".join(["ab"] * 32)


def test_pin_nla_and_user_name_reach_freerdp_only_as_validated_options() -> None:
    p = plan(replace(TUNNEL, require_nla=False, server_cert_sha256=PIN), "linux",
             DEFAULT_CLIENTS["linux"], local_port=1, username="CITY\\yamada.t")
    assert f"/cert:deny,name:{TUNNEL.host},fingerprint:sha256:{PIN}" in p.argv
    assert "/sec:tls" in p.argv and "/sec:nla" not in p.argv and "/sec:rdp" not in p.argv
    assert "/u:CITY\\yamada.t" in p.argv and "/from-stdin:force" in p.argv
    assert not any(a.startswith("/p:") for a in p.argv)  # the password goes through stdin
    for evil in ("-yamada", "/p:x", "a b", "a,b", "a\nb", "", "山田", "a" * 105):
        with pytest.raises(SessionConfigError):
            plan(TUNNEL, "linux", DEFAULT_CLIENTS["linux"], username=evil)


def test_policy_pins_are_normalized_and_validated() -> None:
    from agent.policy.errors import PolicyRefused
    from agent.policy.schema import parse_policy
    from tests.unit.test_policy_support import policy_text

    def parsed(extra: str) -> Target:
        text = policy_text(1).replace('port = 3389\n', 'port = 3389\n' + extra, 1)
        return parse_policy(text.encode()).targets[0]

    t = parsed(f'server_cert_sha256 = "{"AB" * 32}"\nrequire_nla = false\n')
    assert t.server_cert_sha256 == PIN and t.require_nla is False
    assert parsed("").require_nla is True and parsed("").server_cert_sha256 is None
    for bad in ('"ab"', '"' + "zz" * 32 + '"', '"ab:cd,deny"', "1"):
        with pytest.raises(PolicyRefused):
            parsed(f"server_cert_sha256 = {bad}\n")


def test_freerdp3_syntax() -> None:
    p = plan(RDGW, "linux", ClientInfo("xfreerdp3", "xfreerdp3"))
    assert "/gateway:g:gw.city.example:443" in p.argv and not any(a.startswith("/g:")
                                                                   for a in p.argv)
    p2 = plan(RDGW, "linux", DEFAULT_CLIENTS["linux"])
    assert "/g:gw.city.example:443" in p2.argv


def test_windows_rdgateway_fields_and_strict_server_auth() -> None:
    p = plan(RDGW, "windows", DEFAULT_CLIENTS["windows"])
    assert p.rdp_properties is not None
    assert p.rdp_properties["gatewayhostname:s"] == "gw.city.example:443"
    assert p.rdp_properties["gatewaycredentialssource:i"] == "4"
    assert p.rdp_properties["authentication level:i"] == "1"  # abort on a bad server cert
    text = rdp_file_text(p.rdp_properties)
    assert text.count("\r\n") == len(p.rdp_properties)
    assert "full address:s:pc-0123.office.city.example:3389\r\n" in text


EVIL_HOSTS = [
    "pc.example\r\nredirectdrives:i:1",
    "pc.example\nredirectclipboard:i:1",
    "-cert:ignore",
    "/drive:home,/",
    "pc example",
    "pc;rm -rf ~",
    "pc.example:3389",
    "",
    "a" * 300,
    "pc\x00.example",
    "ｐｃ.example",  # full-width: not a DNS label
    "127.0.0.1 /p:x",
]


@pytest.mark.parametrize("evil", EVIL_HOSTS)
@pytest.mark.parametrize("field_name", ["host", "gateway_host"])
@pytest.mark.parametrize("platform", ["windows", "linux"])
def test_injection_attempts_are_refused(evil: str, field_name: str, platform: str) -> None:
    target = replace(RDGW, **{field_name: evil})
    with pytest.raises(SessionConfigError):
        plan(target, platform, DEFAULT_CLIENTS[platform])


@pytest.mark.parametrize("port", [0, -1, 65536, True])
def test_bad_ports_are_refused(port: int) -> None:
    with pytest.raises(SessionConfigError):
        plan(replace(DIRECT, port=port), "linux", DEFAULT_CLIENTS["linux"])
    with pytest.raises(SessionConfigError):
        plan(replace(TUNNEL, gateway_port=port), "windows", DEFAULT_CLIENTS["windows"])


def test_rdp_writer_refuses_smuggled_lines() -> None:
    with pytest.raises(SessionConfigError):
        rdp_file_text({"full address:s": "x\r\nredirectdrives:i:1"})
    with pytest.raises(SessionConfigError):
        rdp_file_text({"redirectdrives:i:1\r\nfull address:s": "x"})


def test_ipv6_literals_are_bracketed() -> None:
    p = plan(replace(DIRECT, host="2001:db8::5"), "windows", DEFAULT_CLIENTS["windows"])
    assert p.connect_to == "[2001:db8::5]:3389"


def test_missing_gateway_and_unknown_mode_are_config_errors() -> None:
    with pytest.raises(SessionConfigError):
        plan(replace(TUNNEL, gateway_host=None), "linux", DEFAULT_CLIENTS["linux"])
    with pytest.raises(SessionConfigError):
        plan(replace(TUNNEL, mode="vnc"), "linux", DEFAULT_CLIENTS["linux"])


def test_freerdp_version_parsing_and_client_choice() -> None:
    from agent.session.clients import find_client, parse_freerdp_version
    from tests.fakes import FakeRunner, Recorded

    # Recorded on this machine (Debian 12, freerdp2-x11) under Xvfb.
    assert parse_freerdp_version("This is FreeRDP version 2.11.7 (2.11.7)\n") == 2
    assert parse_freerdp_version("This is FreeRDP version 3.10.3 (n/a)") == 3
    assert parse_freerdp_version("garbage") is None
    v3 = FakeRunner({("xfreerdp3",): Recorded(b"This is FreeRDP version 3.10.3 (n/a)\n")})
    assert find_client("linux", v3) == ClientInfo("xfreerdp3", "xfreerdp3", "/usr/bin/xfreerdp3")
    no_display = FakeRunner({("xfreerdp",): Recorded(b"", 1, b"Failed to open display\n")})
    client = find_client("linux", no_display)
    assert client is not None and client.flavor == "xfreerdp2"
    assert find_client("linux", FakeRunner()) is None
    assert find_client("windows", None) == DEFAULT_CLIENTS["windows"]


def test_macos_open_waits_for_the_app() -> None:
    """Without -W, `open` returns at once and the session would end with the tunnel."""
    p = plan(TUNNEL, "macos", DEFAULT_CLIENTS["macos"], local_port=5)
    assert p.argv[:3] == ("open", "-W", "-a")
    assert p.rdp_properties is not None and p.rdp_properties["full address:s"] == "127.0.0.1:5"


# --- issue 17, findings 8 and 9 ----------------------------------------------------------------

def test_credssp_follows_require_nla() -> None:
    on = plan(TUNNEL, "windows", DEFAULT_CLIENTS["windows"], local_port=50123)
    off = plan(replace(TUNNEL, require_nla=False), "windows", DEFAULT_CLIENTS["windows"],
               local_port=50123)
    assert on.rdp_properties is not None and off.rdp_properties is not None
    assert on.rdp_properties["enablecredsspsupport:i"] == "1"
    assert off.rdp_properties["enablecredsspsupport:i"] == "0"
    mac = plan(replace(DIRECT, require_nla=False), "macos", DEFAULT_CLIENTS["macos"])
    assert mac.rdp_properties is not None and mac.rdp_properties["enablecredsspsupport:i"] == "0"


def test_stable_port_per_target_makes_the_rdp_file_signable() -> None:
    from agent.session.launch import (
        STABLE_PORT_BASE,
        STABLE_PORT_COUNT,
        stable_port,
        stable_ports,
    )
    port = stable_port("office")
    assert port == stable_port("office")  # the same on every launch and every PC
    assert STABLE_PORT_BASE <= port < STABLE_PORT_BASE + STABLE_PORT_COUNT
    assert port < 32768  # below every OS's ephemeral range
    assert stable_ports("office")[0] == port and len(set(stable_ports("office"))) == 3
    texts = {rdp_file_text(plan(TUNNEL, "windows", DEFAULT_CLIENTS["windows"],
                                local_port=port).rdp_properties or {}) for _ in range(3)}
    assert len(texts) == 1 and f"full address:s:127.0.0.1:{port}\r\n" in texts.pop()
