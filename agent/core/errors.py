"""One error base for the whole agent, and why a query of the OS could not answer.

``AgentError(message, detail)``: ``message`` is a translatable Message for people, ``detail`` an
English line for the log. Every front end shows ``message``; ``byod-agent`` maps any AgentError to
its ``exit_code`` (2 unless a subclass documents another: ``Cancelled`` is 5) in
agent/core/clirun.py. ProbeError and its kinds end as status ``unknown`` with their reason in a
posture check, and as a named failure elsewhere (the subprocess runner raises them too).
"""

from __future__ import annotations

import errno
import os
import re
from functools import cache
from typing import ClassVar

from agent.core import exitcodes
from agent.core.messages import Message, msg


class AgentError(Exception):
    """Something the agent cannot do, said for people (``message``) and for the log (``detail``)."""

    exit_code: ClassVar[int] = exitcodes.USAGE

    def __init__(self, message: Message, detail: str = "") -> None:
        super().__init__(detail or message.key)
        self.message = message
        self.detail = detail


class ProbeError(AgentError):
    """A query of the OS (a command, a file, the registry) could not determine the state."""


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


class Cancelled(AgentError):
    """The user declined, or closed the input (Ctrl-D, a closed stdin) at a prompt: exit 5."""

    exit_code: ClassVar[int] = exitcodes.CANCELLED

    def __init__(self, message: Message | None = None, detail: str = "cancelled at a prompt",
                 ) -> None:
        super().__init__(message or msg("cli.cancelled"), detail)


# errno -> catalogue key of a plain reason. Python's strerror is English ("No such file or
# directory") and would land inside a Japanese sentence; people get these instead.
_ERRNO_KEYS: dict[int, str] = {
    errno.ENOENT: "oserror.not_found",
    errno.ENOTDIR: "oserror.not_found",
    errno.EACCES: "oserror.permission",
    errno.EPERM: "oserror.permission",
    errno.EROFS: "oserror.read_only",
    errno.ENOSPC: "oserror.no_space",
    errno.EDQUOT: "oserror.no_space",
    errno.EISDIR: "oserror.is_directory",
    errno.EEXIST: "oserror.exists",
    errno.ENAMETOOLONG: "oserror.name_too_long",
    errno.EIO: "oserror.io",
    errno.EBUSY: "oserror.busy",
    errno.ETIMEDOUT: "oserror.timeout",
    errno.ECONNREFUSED: "oserror.refused",
    errno.EHOSTUNREACH: "oserror.unreachable",
    errno.ENETUNREACH: "oserror.unreachable",
}


def os_reason(exc: OSError) -> Message:
    """A translated reason for an OSError (never Python's English strerror); for people."""
    key = _ERRNO_KEYS.get(exc.errno or -1)
    if key is not None:
        return msg(key)
    return msg("oserror.other", code=errno.errorcode.get(exc.errno or -1, str(exc.errno or "?")))


@cache
def _strerror_keys() -> dict[str, str]:
    return {os.strerror(code): key for code, key in _ERRNO_KEYS.items()}


_ERRNO_TEXT = re.compile(r"\[Errno (\d+)\] [^:]*(?:: (.*))?\Z", re.DOTALL)


def os_text_reason(text: str) -> Message | None:
    """The translated reason for a parameter that is Python's English OS error text, else None.

    Code written before ``os_reason`` (and third-party code) passes ``exc.strerror`` or
    ``str(exc)`` into a message; agent/core/i18n.py renders such a value through this, so
    "No such file or directory" never lands inside a Japanese sentence.
    """
    key = _strerror_keys().get(text)
    if key is not None:
        return msg(key)
    m = _ERRNO_TEXT.match(text)
    if m is None:
        return None
    reason = os_reason(OSError(int(m.group(1)), ""))
    if m.group(2):
        return msg("oserror.with_path", reason=reason.key, path=m.group(2).strip("'\""))
    return reason
