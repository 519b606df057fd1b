"""firewall on Linux against the real nft, ufw and kernel.

The host keeps its own (empty) ruleset: every rule is loaded inside a fresh network namespace
(``unshare -n``), and ufw runs inside ``unshare -m -n`` on a bind-mounted copy of /etc/ufw, so
neither the host's ruleset nor its ufw.conf ever changes. The probe runs in that namespace in a
child Python process and reports its CheckResult as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from agent.core.subprocess_runner import CommandResult, SubprocessRunner
from agent.posture.checks.firewall import check as firewall
from agent.posture.checks.firewall import linux as firewall_linux
from agent.posture.context import ProbeContext
from agent.posture.engine import run_one
from agent.posture.model import Status
from tests.conftest import require_linux_root, require_tool

pytestmark = pytest.mark.real

SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--")

RULESETS = {
    "inet_policy_drop": """
table inet filter {
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    iif lo accept
  }
  chain forward { type filter hook forward priority 0; policy drop; }
  chain output { type filter hook output priority 0; policy accept; }
}""",
    "inet_policy_accept": """
table inet filter {
  chain input { type filter hook input priority 0; policy accept; }
  chain output { type filter hook output priority 0; policy accept; }
}""",
    "ip_ends_with_reject": """
table ip filter {
  chain input {
    type filter hook input priority 0; policy accept;
    ct state established,related accept
    iif "lo" accept
    tcp dport 22 accept
    counter reject with icmp type admin-prohibited
  }
}""",
    "policy_drop_but_accept_all_rule": """
table inet filter {
  chain input { type filter hook input priority 0; policy drop; counter accept; }
}""",
}


class NobodyRunner(SubprocessRunner):
    """Runs every probe command as an unprivileged user, as the agent does on a staff PC."""

    def run(self, argv: Sequence[str], *, timeout: float | None = None,
            stdin: bytes | None = None) -> CommandResult:
        if self.which(argv[0]) is None:
            return super().run(argv, timeout=timeout, stdin=stdin)  # raises ToolMissing
        res = super().run([*NOBODY, *argv], timeout=timeout, stdin=stdin)
        return CommandResult(tuple(argv), res.returncode, res.stdout, res.stderr)


def probe(root: str = "/", path: str = SBIN_PATH, as_nobody: bool = False) -> dict[str, Any]:
    """Entry point of the child process: run the real check, return what it found."""
    env = {"PATH": path, "HOME": "/root"}
    runner = (NobodyRunner if as_nobody else SubprocessRunner)(env, default_timeout=10)
    ctx = ProbeContext(os="linux", runner=runner, root=Path(root), env=env)
    r = run_one("firewall", firewall.check, ctx)
    return {"status": r.status.value, "key": r.summary.key, "evidence": r.evidence}


_CHILD = """
import json, subprocess, sys
setup = json.loads(sys.argv[1])
for cmd in setup["commands"]:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
from tests.integration.test_firewall_real import probe
print(json.dumps(probe(**setup["probe"])))
"""


def in_namespace(unshare: Sequence[str], commands: list[list[str]],
                 **probe_args: Any) -> dict[str, Any]:
    setup = json.dumps({"commands": commands, "probe": probe_args})
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(["unshare", *unshare, "--", sys.executable, "-c", _CHILD, setup],
                         cwd=repo, capture_output=True, text=True, timeout=60, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(autouse=True)
def _real_tools() -> None:
    require_linux_root()
    require_tool("nft", "ufw", "unshare", "setpriv")


@pytest.fixture
def host_unchanged() -> Any:
    def snapshot() -> tuple[str, bytes]:
        rules = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True,
                               check=True).stdout
        return rules, Path("/etc/ufw/ufw.conf").read_bytes()

    before = snapshot()
    yield
    assert snapshot() == before, "the host's firewall changed"


def test_this_host_has_no_firewall(host_unchanged: None) -> None:
    """Debian 12 here: empty ruleset, ufw installed but inactive, no firewalld."""
    r = probe()
    assert r["status"] == Status.FAIL
    assert r["evidence"]["sources"]["nftables"]["state"] == "inactive"
    assert r["evidence"]["sources"]["ufw"]["state"] == "inactive"


@pytest.mark.parametrize(("ruleset", "status"), [
    ("inet_policy_drop", Status.PASS),
    ("inet_policy_accept", Status.FAIL),
    ("ip_ends_with_reject", Status.PASS),
    ("policy_drop_but_accept_all_rule", Status.FAIL),
])
def test_nft_ruleset_in_a_network_namespace(ruleset: str, status: Status, tmp_path: Path,
                                            host_unchanged: None) -> None:
    rules = tmp_path / "rules.nft"
    rules.write_text(RULESETS[ruleset])
    r = in_namespace(["-n"], [["nft", "-f", str(rules)]])
    assert r["status"] == status, r
    expected = "active" if status is Status.PASS else "inactive"
    assert r["evidence"]["sources"]["nftables"]["state"] == expected


def _ufw_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "ufw"
    shutil.copytree("/etc/ufw", copy, symlinks=True)
    return copy


def test_ufw_enabled_as_root(tmp_path: Path, host_unchanged: None) -> None:
    copy = _ufw_copy(tmp_path)
    r = in_namespace(["-m", "-n"], [["mount", "--bind", str(copy), "/etc/ufw"],
                                    ["ufw", "--force", "enable"]])
    assert r["status"] == Status.PASS, r
    sources = r["evidence"]["sources"]
    assert sources["ufw"] == {"state": "active", "detail": "ufw status"}
    assert sources["nftables"]["state"] == "active"  # ufw's iptables-nft INPUT policy drop


def test_ufw_enabled_seen_by_an_ordinary_user(tmp_path: Path, host_unchanged: None) -> None:
    """nft and ufw status refuse a normal user; the world-readable ufw.conf still answers."""
    copy = _ufw_copy(tmp_path)
    r = in_namespace(["-m", "-n"], [["mount", "--bind", str(copy), "/etc/ufw"],
                                    ["ufw", "--force", "enable"]], as_nobody=True)
    assert r["status"] == Status.PASS, r
    sources = r["evidence"]["sources"]
    assert sources["nftables"]["state"] == "denied"
    assert sources["ufw"] == {"state": "active", "detail": "/etc/ufw/ufw.conf"}


def test_ordinary_user_on_this_host_fails_and_says_rules_were_hidden(
        host_unchanged: None) -> None:
    r = probe(as_nobody=True)
    assert r["status"] == Status.FAIL
    assert r["key"] == "firewall.linux_off_partial"


def test_empty_path_and_no_ufw_conf_is_unknown(tmp_path: Path) -> None:
    r = probe(root=str(tmp_path), path="")
    assert r["status"] == Status.UNKNOWN
    assert r["key"] == "firewall.linux_unreadable"
    assert {s["state"] for s in r["evidence"]["sources"].values()} == {"missing"}


def test_unshare_really_isolates(tmp_path: Path) -> None:
    """Guard for the whole file: a ruleset loaded under unshare -n is invisible on the host."""
    rules = tmp_path / "rules.nft"
    rules.write_text(RULESETS["inet_policy_drop"])
    subprocess.run(["unshare", "-n", "--", "nft", "-f", str(rules)], check=True)
    host = subprocess.run(["nft", "-j", "list", "ruleset"], capture_output=True, text=True,
                          check=True, env={**os.environ, "LC_ALL": "C"}).stdout
    assert firewall_linux.parse_nft_ruleset(host).dropping_chains == ()
