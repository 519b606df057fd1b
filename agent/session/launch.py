"""What the RDP client is started with: every redirection off, nothing saved, values validated.

A ``LaunchPlan`` is pure data, built the same way whichever OS it is for, so IT can inspect with
``connect --dry-run --platform windows`` what Windows staff will get from any machine. Values
come only from the signed policy, and are checked again here, right before they reach an argv or
an .rdp file: host names and IP literals only, ports in range, no control characters, nothing
that starts like an option.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from agent.core import validate
from agent.core.errors import AgentError
from agent.core.messages import msg
from agent.policy.model import Target

# The normalized view shown to IT and tested: every one must be False.
REDIRECTIONS: tuple[str, ...] = ("clipboard", "drives", "printers", "ports", "smartcards",
                                 "pnp", "usb", "camera", "microphone", "webauthn", "location",
                                 "audio_playback")

# .rdp properties that switch every redirection off and keep credentials unsaved (Microsoft
# "Supported RDP properties with Remote Desktop Services").
RDP_LOCKDOWN: dict[str, str] = {
    "redirectclipboard:i": "0",
    "redirectdrives:i": "0",
    "drivestoredirect:s": "",
    "redirectprinters:i": "0",
    "redirectcomports:i": "0",
    "redirectsmartcards:i": "0",
    "redirectposdevices:i": "0",
    "devicestoredirect:s": "",
    "usbdevicestoredirect:s": "",
    "camerastoredirect:s": "",
    "audiocapturemode:i": "0",
    "audiomode:i": "2",  # no sound at home either: screen transfer only
    "redirectwebauthn:i": "0",
    "redirectlocation:i": "0",
    "prompt for credentials:i": "1",  # never saved credentials
    "promptcredentialonce:i": "0",
    "negotiate security layer:i": "1",
    "autoreconnection enabled:i": "0",  # a dropped session is re-opened only through the agent
}
_RDP_KEY = re.compile(r"^[a-z ]+:[is]$")
# Stands for the .rdp file in a plan; the runner puts the private file's path in its place.
RDP_FILE_PLACEHOLDER = "<private temporary .rdp file>"

# FreeRDP's defaults already leave drives, printers, smart cards, serial/parallel, USB, camera and
# microphone unredirected; we only switch off what is on by default and refuse nothing else.
# Verified against a real xrdp: with these options its channel list has no ``cliprdr``
# (tests/integration/test_session_e2e.py).
XFREERDP_LOCKDOWN: tuple[str, ...] = ("-clipboard", "/audio-mode:2", "-auto-reconnect")

# A user name goes into argv as /u:NAME, so it must not be able to look like anything else:
# agent.core.validate.USERNAME (sAMAccountName, user@domain and DOMAIN\user forms).


class SessionConfigError(AgentError):
    """A policy value that must not reach a command line or .rdp file (exit 2)."""

    def __init__(self, field_name: str, detail: str) -> None:
        super().__init__(msg("session.error.config", field=field_name, detail=detail),
                         f"{field_name}: {detail}")
        self.field = field_name
        self.detail = detail




def check_host(field_name: str, value: str) -> str:
    if not value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise SessionConfigError(field_name, "empty or has control characters")
    checked = validate.host(value)  # strict grammar: no IPv6 zone identifier (issue 18)
    if checked is None:
        raise SessionConfigError(field_name, f"{value[:80]!r} is not a host name")
    return checked


def check_port(field_name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise SessionConfigError(field_name, f"{value!r} is not a port")
    return value


def check_username(value: str) -> str:
    if validate.username(value) is None:  # fullmatch: no trailing newline (issue 18)
        raise SessionConfigError("user", "letters, digits and . _ @ \\ - only")
    return value


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _gateway(target: Target) -> str:
    if not target.gateway_host or target.gateway_port is None:
        raise SessionConfigError("gateway", f"a {target.mode} target needs its gateway")
    return _hostport(check_host("gateway", target.gateway_host),
                     check_port("gateway", target.gateway_port))


@dataclass(frozen=True)
class ClientInfo:
    """The RDP client found on the platform (or assumed for --platform planning)."""

    program: str
    flavor: str  # xfreerdp2 | xfreerdp3 | mstsc | windows_app | remmina
    path: str | None = None


@dataclass(frozen=True)
class LaunchPlan:
    target_id: str
    mode: str
    platform: str
    client: ClientInfo
    connect_to: str  # host:port the RDP client opens (127.0.0.1:port in tunnel mode)
    argv: tuple[str, ...]
    rdp_properties: dict[str, str] | None
    tunnel: dict[str, Any] | None
    redirections: dict[str, bool] = field(
        default_factory=lambda: dict.fromkeys(REDIRECTIONS, False))

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target_id, "mode": self.mode, "platform": self.platform,
            "client": {"program": self.client.program, "flavor": self.client.flavor},
            "connect_to": self.connect_to, "argv": list(self.argv),
            "rdp_properties": self.rdp_properties, "tunnel": self.tunnel,
            "redirections": self.redirections,
        }


def rdp_file_text(properties: dict[str, str]) -> str:
    """Serialize; refuses anything that could smuggle an extra line or property."""
    lines = []
    for key, value in properties.items():
        if not _RDP_KEY.fullmatch(key):
            raise SessionConfigError(key, "not an .rdp property name")
        if any(c in value for c in "\r\n\x00") or any(ord(c) < 0x20 for c in value):
            raise SessionConfigError(key, "control characters in an .rdp value")
        lines.append(f"{key}:{value}")
    # mstsc reads UTF-16 LE with a BOM as well as UTF-8; we write UTF-8 and CRLF.
    return "\r\n".join(lines) + "\r\n"


def _rdp_properties(target: Target, connect_to: str, tunnel: bool) -> dict[str, str]:
    props: dict[str, str] = {"full address:s": connect_to}
    props.update(RDP_LOCKDOWN)
    # Server authentication: abort on failure (1). Through the tunnel mstsc reaches 127.0.0.1,
    # whose name the office PC's certificate cannot carry; the gateway's mutual TLS (pinned to
    # the policy's CA) authenticates that path, so mstsc may only warn (2). See docs/session.md.
    props["authentication level:i"] = "2" if tunnel else "1"
    # CredSSP is Network Level Authentication: the policy's require_nla decides, as it does for
    # xfreerdp's /sec:nla (an office PC without NLA refuses a client that insists on it).
    props["enablecredsspsupport:i"] = "1" if target.require_nla else "0"
    if target.mode == "rdgateway":
        gw = target.rd_gateway
        props.update({
            "gatewayhostname:s": _gateway(target),
            "gatewayusagemethod:i": str(gw.usage_method if gw else 1),
            "gatewaycredentialssource:i": str(gw.credentials_source if gw else 4),
            "gatewayprofileusagemethod:i": "1",
            "promptcredentialonce:i": "1" if gw and gw.use_same_credentials else "0",
        })
    return props


def _xfreerdp_argv(target: Target, client: ClientInfo, connect_to: str,
                   username: str | None) -> tuple[str, ...]:
    v3 = client.flavor == "xfreerdp3"
    argv = [client.program, f"/v:{connect_to}", *XFREERDP_LOCKDOWN,
            "/sec:nla" if target.require_nla else "/sec:tls"]
    # Server authentication (FreeRDP 2.11 and 3 share this syntax): ``deny`` aborts instead of
    # asking the user to accept an unknown certificate; the office PC's certificate must name
    # the office PC even when we reach it through 127.0.0.1; a policy pin replaces the
    # system-store check for office PCs with self-issued certificates.
    cert = f"/cert:deny,name:{target.host}"
    if target.server_cert_sha256:
        cert += f",fingerprint:sha256:{target.server_cert_sha256}"
    argv.append(cert)
    if username is not None:
        # The password never goes into argv: the agent writes it to the client's stdin.
        argv += [f"/u:{check_username(username)}", "/from-stdin:force"]
    if target.mode == "rdgateway":
        gw = _gateway(target)
        argv += [f"/gateway:g:{gw}"] if v3 else [f"/g:{gw}", "/gt:http"]
    if any(a.startswith("-") and a not in XFREERDP_LOCKDOWN for a in argv[1:]):
        raise SessionConfigError("argv", "unexpected option")
    return tuple(argv)


def plan(target: Target, platform: str, client: ClientInfo, *,
         local_port: int | None = None, username: str | None = None) -> LaunchPlan:
    if target.protocol != "rdp":
        raise SessionConfigError("protocol", f"{target.protocol!r} is not supported")
    host = check_host("host", target.host)
    port = check_port("port", target.port)
    tunnel_info = None
    if target.mode == "tunnel":
        tunnel_info = {"listen": "127.0.0.1", "local_port": local_port,
                       "gateway": _gateway(target),
                       "sni": host, "client_certificate": True}
        connect_to = f"127.0.0.1:{local_port or 0}"
    elif target.mode in ("direct", "rdgateway"):
        connect_to = _hostport(host, port)
    else:
        raise SessionConfigError("mode", f"{target.mode!r} is not a mode")
    is_tunnel = tunnel_info is not None
    if client.flavor in ("xfreerdp2", "xfreerdp3"):
        return LaunchPlan(target.id, target.mode, platform, client, connect_to,
                          _xfreerdp_argv(target, client, connect_to, username), None,
                          tunnel_info)
    props = _rdp_properties(target, connect_to, is_tunnel)
    rdp_file_text(props)  # validate now: a bad value fails the plan, not the launch
    if client.flavor == "mstsc":
        argv: tuple[str, ...] = (client.program, RDP_FILE_PLACEHOLDER)
    else:  # macOS Windows App / Microsoft Remote Desktop open .rdp files
        # -W: open waits until the app quits, so the session (and its monitor and tunnel)
        # lasts as long as the remote desktop app instead of ending when open returns.
        argv = ("open", "-W", "-a", client.program, RDP_FILE_PLACEHOLDER)
    return LaunchPlan(target.id, target.mode, platform, client, connect_to, argv, props,
                      tunnel_info)


# A stable loopback port per target, so that the .rdp file (full address 127.0.0.1:PORT) is the
# same on every launch and IT can sign it once (rdpsign /sha256): since the April 2026 Windows
# update an unsigned .rdp file shows "Caution: Unknown remote connection" every time. The range
# lies below every OS's ephemeral ports (Windows and macOS 49152-65535, Linux 32768-60999), so an
# outgoing connection is never given it by chance; the port is derived from the target id (the
# same on every PC). When it is taken, the next STABLE_PORT_TRIES ports are tried, then any free
# port (the session still works; staff see the warning for that launch, and the log says why).
STABLE_PORT_BASE = 29100
STABLE_PORT_COUNT = 800  # 29100-29899
STABLE_PORT_TRIES = 3


def stable_port(target_id: str) -> int:
    digest = hashlib.sha256(target_id.encode("utf-8")).digest()
    return STABLE_PORT_BASE + int.from_bytes(digest[:4], "big") % STABLE_PORT_COUNT


def stable_ports(target_id: str) -> tuple[int, ...]:
    """The ports the tunnel tries, in order, before it falls back to any free one."""
    first = stable_port(target_id) - STABLE_PORT_BASE
    return tuple(STABLE_PORT_BASE + (first + i) % STABLE_PORT_COUNT
                 for i in range(STABLE_PORT_TRIES))


DEFAULT_CLIENTS: dict[str, ClientInfo] = {
    "windows": ClientInfo("mstsc.exe", "mstsc"),
    "macos": ClientInfo("Windows App", "windows_app"),
    "linux": ClientInfo("xfreerdp", "xfreerdp2"),
}
