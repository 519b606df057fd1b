"""Why a probe could not answer. Every one of these ends as status ``unknown`` with its reason."""

from __future__ import annotations

from agent.messages import Message, msg


class ProbeError(Exception):
    """A probe could not determine the state. ``message`` says why, in any language."""

    def __init__(self, message: Message, detail: str = "") -> None:
        super().__init__(detail or message.key)
        self.message = message
        self.detail = detail


class ToolMissing(ProbeError):
    def __init__(self, tool: str) -> None:
        super().__init__(msg("probe.tool_missing", tool=tool), f"{tool} not found on PATH")
        self.tool = tool


class ProbeTimeout(ProbeError):
    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(
            msg("probe.timeout", what=what, seconds=round(seconds, 1)),
            f"{what} did not answer within {seconds:.1f} s",
        )


class CommandFailed(ProbeError):
    def __init__(self, tool: str, code: int, stderr: str = "") -> None:
        tail = stderr.strip().splitlines()[-1][:200] if stderr.strip() else ""
        super().__init__(msg("probe.command_failed", tool=tool, code=code, detail=tail),
                         f"{tool} exited {code}: {tail}")
        self.code = code


class ParseError(ProbeError):
    def __init__(self, what: str, detail: str) -> None:
        super().__init__(msg("probe.parse_error", what=what, detail=detail[:200]),
                         f"cannot parse {what}: {detail}")


class SourceMissing(ProbeError):
    """A file or registry value the probe needs does not exist or cannot be read."""

    def __init__(self, what: str, detail: str = "") -> None:
        super().__init__(msg("probe.source_missing", what=what, detail=detail[:200]),
                         f"{what} unavailable: {detail}")


class Unsupported(ProbeError):
    """The platform or configuration has no source this probe can trust."""

    def __init__(self, what: str) -> None:
        super().__init__(msg("probe.unsupported", what=what), f"unsupported: {what}")
