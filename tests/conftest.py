"""Shared test helpers.

Real components (clamd, nft, Xvfb, gnome-keyring...) are used wherever they run on Linux. Where one
is missing, a developer's run skips the test with the reason; under CI=true the same absence fails
the run, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, why: str) -> None:
    """Skip (developer) or fail (CI=true) when a real component is not available."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required real component missing under CI=true: {why}")
    pytest.skip(why)


def require_tool(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    require(not missing, f"tools not installed: {', '.join(missing)}")


def require_linux_root() -> None:
    require(sys.platform.startswith("linux") and os.geteuid() == 0, "needs Linux and root")


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
