"""bench/ stays runnable: the modules import, the log generator works, and ``bench/run --quick``
ends with one JSON object holding exactly the issue's keys (numbers, or null with a reason).

Only the fast benchmarks run here (tiny sizes); the real numbers come from ``bench/run`` alone.
"""

from __future__ import annotations

import importlib
import json
import subprocess
from pathlib import Path

import pytest

from bench import __main__ as bench_main
from bench import export
from tests.conftest import REPO

pytestmark = pytest.mark.timeout(60)


def test_every_benchmark_module_imports_and_declares_its_keys() -> None:
    keys: list[str] = []
    for name in bench_main.BENCHMARKS:
        keys += importlib.import_module(f"bench.{name}").KEYS
    assert sorted(keys) == sorted(bench_main.JSON_KEYS)


def test_generated_logs_are_json_lines_in_rotation_sized_files(tmp_path: Path) -> None:
    files = export.write_logs(tmp_path, 2 * export.FILE_BYTES)
    assert [p.name for p in files] == ["agent.log", "agent.log.1"]
    for p in files:
        lines = p.read_text(encoding="utf-8").splitlines()
        assert abs(p.stat().st_size - export.FILE_BYTES) < 1024
        assert {"time", "level", "logger", "message"} <= set(json.loads(lines[0]))


def test_quick_run_ends_with_one_json_line_of_the_issue_keys() -> None:
    proc = subprocess.run([str(REPO / "bench" / "run"), "--quick", "--only", "posture",
                           "tunnel", "deb_size"], cwd=REPO, capture_output=True, text=True,
                          timeout=55, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    values = json.loads(lines[-1])
    assert list(values) == list(bench_main.JSON_KEYS)
    assert all(v is None or isinstance(v, int | float) for v in values.values())
    assert isinstance(values["posture_vs_slowest_probe"], float)
    assert values["deb_size_vs_minimal"] is None  # never built in --quick, and says so
    assert any("not run: skipped in --quick" in line for line in lines)
    # Not run at all: null, never a made-up number.
    assert values["startup_vs_minimal"] is None and values["export_vs_zip"] is None
