"""disk_encryption on macOS: ``fdesetup isactive`` (exit code and stdout); ``fdesetup status``
as evidence only.
"""

from __future__ import annotations

from agent.core.errors import ProbeError
from agent.core.messages import msg
from agent.posture.context import ProbeContext
from agent.posture.model import Evidence, Finding, Status

CHECK_ID = "disk_encryption"


def evaluate_fdesetup(code: int, stdout: str, status_text: str | None) -> Finding:
    """Exit code and stdout must agree; a lone exit 1 (an error) is not proof FileVault is off."""
    answer = stdout.strip().lower()
    evidence: Evidence = {"isactive_exit": code, "isactive_stdout": stdout.strip()[:100]}
    if status_text is not None:
        evidence["status"] = status_text.strip()[:500]
    if code == 0 and answer == "true":
        return Finding(Status.PASS, msg("disk_encryption.macos.on"), evidence)
    if code == 1 and answer == "false":
        return Finding(Status.FAIL, msg("disk_encryption.macos.off"), evidence,
                       "disk_encryption.macos")
    return Finding(Status.UNKNOWN, msg("disk_encryption.macos.unknown", code=code), evidence,
                   f"{CHECK_ID}.unknown")


def check_macos(ctx: ProbeContext) -> Finding:
    result = ctx.runner.run(["fdesetup", "isactive"])
    status_text: str | None
    try:
        status_text = ctx.runner.run(["fdesetup", "status"]).check().text()
    except ProbeError as exc:
        status_text = f"(unavailable: {exc.detail})"
    return evaluate_fdesetup(result.returncode, result.text(), status_text)
