"""A copy of the agent as IT would build it: its own trust anchor and signed policy, read-only.

The agent trusts policy keys only from its installed resources/trust (no override exists, on
purpose), so a test that needs its own policy runs a copy of agent/ + resources/ with the test
key in place of the DEMO anchor, exactly what ``byod-admin build-config`` produces for a city.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.unit.test_policy_support import Signer


def make_install(root: Path, policy: str, signer: Signer) -> Path:
    app = root / "app"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "agent", app / "agent", ignore=ignore)
    for sub in ("i18n", "icons"):
        shutil.copytree(REPO / "resources" / sub, app / "resources" / sub)
    signer.write_pub(app / "resources" / "trust")
    (app / "resources" / "policy").mkdir(parents=True)
    signer.write(app / "resources" / "policy" / "city.toml", policy)
    return app


def agent_process(app: Path, args: list[str], env: dict[str, str],
                  **kwargs: object) -> subprocess.Popen[str]:
    """``byod-agent ARGS`` from the copy (``-m agent`` finds ``app/agent`` first on sys.path)."""
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
            "PYTHONPATH": str(app), **env}
    return subprocess.Popen([sys.executable, "-m", "agent", *args], cwd=app, env=full,
                            text=True, **kwargs)  # type: ignore[call-overload]
