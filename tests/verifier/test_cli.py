"""``byod-verifier`` as IT types it: db upgrade, assign import/set/list/remove, gateway render."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from verifier import demo


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "verifier", *args], capture_output=True,
                          text=True, timeout=60, env=demo.python_env(), check=False)


def test_assignments_round_trip(tmp_path: Path) -> None:
    lay = demo.layout(tmp_path / "v")
    cfg = str(lay.config)
    assert run("db", "upgrade", "--config", cfg).returncode == 0
    out = run("assign", "import", "--config", cfg, str(lay.dir / "users.csv"))
    assert out.returncode == 0 and "2 assignments imported" in out.stdout
    assert run("assign", "set", "--config", cfg, "userC", "pcC", "10.0.0.7", "3389"
               ).returncode == 0
    assert run("assign", "set", "--config", cfg, "userA", "pcA2", "10.0.0.8", "3389"
               ).returncode == 0  # reassigned, not duplicated
    listing = run("assign", "list", "--config", cfg).stdout.splitlines()
    assert listing[0] == "user,pc,host,port"
    assert "userA,pcA2,10.0.0.8,3389" in listing and "userC,pcC,10.0.0.7,3389" in listing
    assert len(listing) == 4
    assert run("assign", "remove", "--config", cfg, "userC").returncode == 0
    assert run("assign", "remove", "--config", cfg, "userC").returncode == 1
    rendered = run("gateway", "render", "--config", cfg, "--out", str(tmp_path / "be.cfg"))
    assert rendered.returncode == 0
    text = (tmp_path / "be.cfg").read_text()
    assert "backend be_pcA2\n    server pcA2 10.0.0.8:3389" in text
    nginx = run("gateway", "render", "--config", cfg, "--nginx").stdout
    assert '"CN=userA,OU=pcA2" 10.0.0.8:3389;' in nginx


def test_bad_input_is_a_usage_error_without_traceback(tmp_path: Path) -> None:
    lay = demo.layout(tmp_path / "v")
    cfg = str(lay.config)
    bad = tmp_path / "bad.csv"
    bad.write_text("user,pc,host,port\nuser A,pc1,h,1\n")
    out = run("assign", "import", "--config", cfg, str(bad))
    assert out.returncode == 2 and "line 2" in out.stderr and "Traceback" not in out.stderr
    dup = tmp_path / "dup.csv"
    dup.write_text("user,pc,host,port\nu1,pc1,h,1\nu1,pc2,h,2\n")
    assert "appears twice" in run("assign", "import", "--config", cfg, str(dup)).stderr
    assert run("assign", "set", "--config", cfg, "u", "pc", "h", "99999").returncode == 2
    conf = tmp_path / "v.toml"
    conf.write_text("enforse_tick = 1\n" + lay.config.read_text())
    out = run("serve", "--config", str(conf))
    assert out.returncode == 2 and "unknown keys: enforse_tick" in out.stderr
