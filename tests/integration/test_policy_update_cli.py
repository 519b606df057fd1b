"""``byod-agent policy update`` end to end: one test per documented exit code.

The real command runs in a child process from a copy of the agent as IT would build it
(tests/integration/custom_install.py: the test key in place of the DEMO anchor, a signed
installed policy whose ``[update]`` names the server), against the real local HTTPS server of
test_policy_fetch.py (Python ssl, a test CA, on 127.0.0.1). Each child gets its own HOME and XDG
directories. The codes are the documented ones (README's exit-code table, ``policy update
--help``, agent/core/exitcodes.py): 0 a policy is in force (updated or up to date), 6 offline
(the server cannot be reached; the policy in force stays), 2 the download was refused or no
policy is in force and nothing could provide one.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.integration.custom_install import agent_process, make_install
from tests.integration.test_policy_fetch import SIGNER, Site, pki, server  # noqa: F401
from tests.unit.test_policy_support import policy_text

pytestmark = [pytest.mark.real]


def _installed(url: str, ca: str, *, serial: int = 1, expires: str = "2027-01-01T00:00:00+09:00",
               not_before: str = "2026-01-01T00:00:00+09:00") -> str:
    return policy_text(serial, not_before=not_before, expires=expires, extra=(
        f'\n[update]\nurl = "{url}"\nca = \'\'\'{ca}\'\'\'\ninterval_hours = 24\n'))


def _run(tmp: Path, policy: str, *args: str) -> subprocess.CompletedProcess[str]:
    app = make_install(tmp / "install", policy, SIGNER)
    home = tmp / "home"
    env = {"HOME": str(home), "XDG_STATE_HOME": str(home / "state"),
           "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_CACHE_HOME": str(home / "cache"), "TMPDIR": str(tmp)}
    home.mkdir()
    proc = agent_process(app, ["--lang", "en", "policy", "update", *args], env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"policy update did not end: {out}{err}")
    assert "Traceback" not in out + err
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _closed_port() -> int:
    with socket.socket() as s:  # bound, never listening: connections are refused at once
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_exit_0_a_newer_policy_is_downloaded_and_in_force(
        server: tuple[str, Site], pki: dict[str, object], tmp_path: Path) -> None:  # noqa: F811
    base, site = server
    res = _run(tmp_path, _installed(f"{base}/policy.toml", str(pki["ca_pem"])))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "A new policy was downloaded and checked: test-city, serial 2." in res.stdout
    assert any(path == "/policy.toml" for _, path, _ in site.requests)


def test_exit_6_offline_the_installed_policy_stays(pki: dict[str, object],  # noqa: F811
                                                   tmp_path: Path) -> None:
    url = f"https://127.0.0.1:{_closed_port()}/policy.toml"
    res = _run(tmp_path, _installed(url, str(pki["ca_pem"])))
    assert res.returncode == 6, res.stdout + res.stderr
    assert "could not be reached" in res.stderr or "did not answer" in res.stderr, res.stderr
    assert "The current policy stays in force." in res.stderr


def test_exit_2_a_refused_download(server: tuple[str, Site],  # noqa: F811
                                   pki: dict[str, object], tmp_path: Path) -> None:  # noqa: F811
    base, _ = server  # /badsig/: the body's signature is made with a key the agent does not trust
    res = _run(tmp_path, _installed(f"{base}/badsig/policy.toml", str(pki["ca_pem"])))
    assert res.returncode == 2, res.stdout + res.stderr
    assert "The current policy stays in force." in res.stderr


def test_exit_2_no_policy_in_force_and_the_server_cannot_provide_one(
        pki: dict[str, object], tmp_path: Path) -> None:  # noqa: F811
    """The installed policy expired and its server is offline: nothing can help, exit 2."""
    url = f"https://127.0.0.1:{_closed_port()}/policy.toml"
    res = _run(tmp_path, _installed(url, str(pki["ca_pem"]), not_before="2025-01-01T00:00:00+09:00",
                                    expires="2025-06-01T00:00:00+09:00"))
    assert res.returncode == 2, res.stdout + res.stderr
    assert "No policy is in force after the update attempt." in res.stderr


def test_exit_2_stranded_no_policy_in_force_and_none_names_a_server(tmp_path: Path) -> None:
    expired = policy_text(1, not_before="2025-01-01T00:00:00+09:00",
                          expires="2025-06-01T00:00:00+09:00")  # no [update] section
    res = _run(tmp_path, expired)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "no installed policy names an update server" in res.stderr
