"""disk_encryption on macOS: ``fdesetup isactive`` (exit code and stdout); ``fdesetup status``
as evidence only.
"""

from __future__ import annotations

from agent.core.errors import ProbeError
from agent.core.messages import msg
from agent.posture.context import ProbeContext
from agent.posture.model import Evidence, Finding, Status

CHECK_ID = "disk_encryption"
BUSY = 2  # fdesetup isactive: on, but encrypting or decrypting


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
    if code == BUSY:
        # fdesetup(8): 2 = FileVault is on but busy, i.e. encrypting, or decrypting after it was
        # switched off (boxen/puppet-boxen pull request #60). One rule on every OS (Windows
        # BitLocker the same): encrypting warns, decrypting fails. ``fdesetup status`` prints a
        # fixed English "Decryption in progress" line for the second case.
        if status_text is not None and "decryption in progress" in status_text.lower():
            return Finding(Status.FAIL, msg("disk_encryption.macos.decrypting"), evidence,
                           "disk_encryption.macos")
        return Finding(Status.WARN, msg("disk_encryption.macos.encrypting"), evidence,
                       "disk_encryption.macos.encrypting")
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
