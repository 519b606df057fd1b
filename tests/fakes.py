"""Test doubles that feed recorded outputs and faults to probes through the real interfaces."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.core.errors import ProbeTimeout, ToolMissing
from agent.core.subprocess_runner import CommandResult
from agent.posture.context import ProbeContext, ProcInfo
from agent.posture.settings import PostureSettings


@dataclass
class Recorded:
    stdout: bytes = b""
    returncode: int = 0
    stderr: bytes = b""


@dataclass
class FakeRunner:
    """Answers argv prefixes with recorded results; anything unlisted is a missing tool."""

    answers: dict[tuple[str, ...], Recorded | Callable[[Sequence[str]], Recorded]] = field(
        default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def which(self, tool: str) -> str | None:
        return f"/usr/bin/{tool}" if any(k[0] == tool for k in self.answers) else None

    def run(self, argv: Sequence[str], *, timeout: float | None = None,
            stdin: bytes | None = None) -> CommandResult:
        argv = tuple(argv)
        self.calls.append(argv)
        best = None
        for prefix, answer in self.answers.items():
            if argv[: len(prefix)] == prefix and (best is None or len(prefix) > len(best[0])):
                best = (prefix, answer)
        if best is None:
            raise ToolMissing(argv[0])
        answer = best[1]
        rec = answer(argv) if callable(answer) else answer
        return CommandResult(argv, rec.returncode, rec.stdout, rec.stderr)


class FaultRunner:
    """Every command suffers the same fault: used by the fault matrix."""

    def __init__(self, fault: str, delay: float = 0.0) -> None:
        self.fault = fault
        self.delay = delay

    def which(self, tool: str) -> str | None:
        return None if self.fault == "missing" else f"/usr/bin/{tool}"

    def run(self, argv: Sequence[str], *, timeout: float | None = None,
            stdin: bytes | None = None) -> CommandResult:
        argv = tuple(argv)
        if self.fault == "missing":
            raise ToolMissing(argv[0])
        if self.fault == "timeout":
            raise ProbeTimeout(argv[0], timeout or 1.0)
        if self.fault == "hang":
            time.sleep(self.delay)
            raise ProbeTimeout(argv[0], self.delay)
        if self.fault == "exit":
            return CommandResult(argv, 1, b"", b"error: something failed\n")
        if self.fault == "garbage":
            return CommandResult(argv, 0, b"\x00\xff garbage {[ \xfe\n" * 3, b"")
        if self.fault == "truncated":
            return CommandResult(argv, 0, b'{"partial": [1, 2', b"")
        if self.fault == "empty":
            return CommandResult(argv, 0, b"", b"")
        if self.fault == "exception":
            raise RuntimeError("injected crash")
        raise AssertionError(self.fault)


def make_ctx(os_name: str = "linux", *, runner: Any = None, root: Path | None = None,
             home: Path | None = None, settings: PostureSettings | None = None,
             processes: Callable[[], list[ProcInfo]] | None = None,
             snapshot: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
             env: Mapping[str, str] | None = None, now: Any = None) -> ProbeContext:
    """A context whose every source is explicit (nothing from the host leaks in by accident)."""
    from datetime import UTC, datetime

    source: Callable[[], Mapping[str, Any]] | None
    if snapshot is None or callable(snapshot):
        source = snapshot
    else:
        frozen = snapshot
        source = lambda: frozen  # noqa: E731
    return ProbeContext(
        os=os_name,
        runner=runner if runner is not None else FakeRunner(),
        root=root if root is not None else Path("/nonexistent-root"),
        home=home if home is not None else Path("/home/staff"),
        env=dict(env or {}),
        settings=settings or PostureSettings(),
        now=now or datetime(2026, 11, 27, 3, 0, tzinfo=UTC),
        processes=processes or (lambda: []),
        windows_snapshot_source=source,
    )
