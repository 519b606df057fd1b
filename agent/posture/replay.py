"""Replay a recorded Windows snapshot: the checks run exactly as on that PC, on any machine.

The help desk uses it to explain a result from a bundle or a staff member's PC, and the tests and
outside checks use it to feed recorded PCs to the real checks. The context says ``windows``, its
snapshot source is the file, its clock is the snapshot's ``collected_at`` (or ``--now``), and it
can run nothing: every command, file and process list a check would read besides the snapshot is
missing, so a check whose data the snapshot lacks is ``unknown``, never ``pass``.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.core.errors import ParseError, SourceMissing, ToolMissing
from agent.core.messages import msg
from agent.core.subprocess_runner import CommandResult
from agent.posture import registry, windows_snapshot
from agent.posture.context import ProbeContext, ProcInfo
from agent.posture.engine import CheckFn, run_checks
from agent.posture.model import Finding, HostInfo, Report, Status
from agent.posture.settings import PostureSettings

MAX_SNAPSHOT_BYTES = 4 << 20  # a real snapshot is a few KB; 100 history entries stay far below
# A root that cannot exist: any file a check would read is missing.
NO_ROOT = Path("/nonexistent-replay-root")


class NoCommands:
    """The replay's runner: nothing can be run, as if every tool were missing."""

    def run(self, argv: Sequence[str], *, timeout: float | None = None,
            stdin: bytes | None = None) -> CommandResult:
        raise ToolMissing(f"{argv[0] if argv else '?'} (replay: not in the snapshot)")

    def which(self, tool: str) -> str | None:
        return None


def _no_processes() -> list[ProcInfo]:
    raise SourceMissing("process list", "replay: the snapshot has none")


@dataclass(frozen=True)
class Replay:
    path: str
    snapshot: Mapping[str, Any]
    collected_at: datetime | None
    now: datetime

    def to_json(self) -> dict[str, Any]:
        return {"snapshot": self.path, "collected_at": _iso(self.collected_at),
                "now": _iso(self.now), "evaluated_on": platform.system() or "?"}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def load(path: Path, now: datetime | None = None) -> Replay:
    """Read and check a snapshot file (the JSON windows_snapshot.ps1 prints; a fixture's extra
    ``_source``/``expect`` keys are ignored). Raises ProbeError with the reason."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_SNAPSHOT_BYTES + 1)
    except OSError as exc:
        raise SourceMissing(str(path), exc.strerror or type(exc).__name__) from exc
    if len(raw) > MAX_SNAPSHOT_BYTES:
        raise ParseError(str(path), f"larger than {MAX_SNAPSHOT_BYTES} bytes")
    snap = windows_snapshot.parse(raw)
    collected = parse_time(snap.get("collected_at"))
    when = now or collected
    if when is None:
        raise ParseError(str(path), "no collected_at in the snapshot: give --now")
    return Replay(str(path), snap, collected, when)


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def context(replay: Replay, settings: PostureSettings | None = None) -> ProbeContext:
    snap = replay.snapshot
    return ProbeContext(os="windows", runner=NoCommands(), root=NO_ROOT,
                        home=Path("C:/Users/replay"), env={},
                        settings=settings or PostureSettings(), now=replay.now,
                        processes=_no_processes, windows_snapshot_source=lambda: snap)


def _not_in_snapshot(check_id: str) -> Callable[[ProbeContext], Finding]:
    def fn(_ctx: ProbeContext) -> Finding:
        return Finding(Status.UNKNOWN, msg("replay.not_in_snapshot", check=check_id),
                       {"replay": True}, None)
    return fn


def replay_checks(checks: Sequence[tuple[str, CheckFn]]) -> list[tuple[str, CheckFn]]:
    """The built-in checks run on the snapshot; any other check (forbidden software, clock,
    agent version) would read this machine, so in a replay it is unknown."""
    builtin = {cid for cid, _ in registry.CHECKS}
    return [(cid, fn if cid in builtin else _not_in_snapshot(cid)) for cid, fn in checks]


def host(replay: Replay) -> HostInfo:
    os_section = replay.snapshot.get("os")
    version = "?"
    if isinstance(os_section, Mapping) and "error" not in os_section:
        version = f"10.0.{os_section.get('CurrentBuildNumber')}.{os_section.get('UBR')}"
    return HostInfo(os="windows", os_version=version, hostname="(replay)", arch="?")


def run(replay: Replay, settings: PostureSettings | None = None,
        checks: Sequence[tuple[str, CheckFn]] | None = None) -> Report:
    ctx = context(replay, settings)
    results = run_checks(ctx, replay_checks(list(registry.CHECKS if checks is None else checks)))
    return Report(generated_at=_iso(replay.now.replace(microsecond=0)) or "", host=host(replay),
                  checks=results)
