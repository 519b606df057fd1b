"""``byod-verifier demo --dir DIR`` as the README shows it: one JSON line, runs until SIGINT."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require
from verifier import demo

pytestmark = pytest.mark.real


def test_demo_prints_one_json_line_and_stops_on_sigint(tmp_path: Path) -> None:
    require(shutil.which("haproxy") is not None, "haproxy (apt haproxy)")
    proc = subprocess.Popen([sys.executable, "-m", "verifier", "demo", "--dir",
                             str(tmp_path / "city")], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=demo.python_env())
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        for key in ("config", "city_ca", "posture_ca", "policy", "verifier_log"):
            assert Path(info[key]).exists(), key
        for user in ("userA", "userB"):
            p12 = Path(info["users"][user]["p12"])
            pw = Path(info["users"][user]["password_file"])
            assert p12.exists() and oct(pw.stat().st_mode & 0o777) == "0o600"
        assert oct((tmp_path / "city" / "posture-ca.key").stat().st_mode & 0o777) == "0o600"
        assert info["verifier_url"].startswith("https://127.0.0.1:")
        demo.wait_port(int(info["gateway"].rsplit(":", 1)[1]), 5)
        haproxy_pid = info["pids"]["haproxy"]
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(20)
    assert code == 0
    with pytest.raises(ProcessLookupError):
        os.kill(haproxy_pid, 0)
