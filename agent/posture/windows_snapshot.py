"""Placeholder: the batched PowerShell snapshot lands with its script (docs/windows-snapshot.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.posture.errors import Unsupported
from agent.runner import Runner


def collect(runner: Runner) -> Mapping[str, Any]:
    raise Unsupported("Windows snapshot")
