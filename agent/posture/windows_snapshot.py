"""The batched Windows snapshot: one PowerShell call answers every Windows check.

Japanese Windows localizes command text, so no check parses it; instead ``windows_snapshot.ps1``
reads registry values, CIM classes and COM objects and prints one UTF-8 JSON object whose shape is
documented in docs/windows-snapshot.md. ``collect`` is a pure function of the runner, so tests feed
it recorded outputs and faults exactly as they would reach it on a real PC.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from agent.core.errors import ParseError
from agent.core.subprocess_runner import Runner

SCHEMA = 1
SCRIPT_NAME = "windows_snapshot.ps1"
# Windows PowerShell 5.1 is on every Windows; "powershell.exe" resolves to it through PATH.
POWERSHELL = "powershell.exe"
BASE_ARGS = ("-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-EncodedCommand")
# CreateProcess limits lpCommandLine to 32767 characters including the terminating NUL.
MAX_COMMAND_LINE = 32767


def script_source() -> str:
    """The script as shipped (package data next to this module)."""
    return resources.files("agent.posture").joinpath(SCRIPT_NAME).read_text(encoding="utf-8")


def compact(script: str) -> str:
    """Drop comment-only lines, blank lines and indentation: the comments stay in the source
    file, where they cite their sources, without eating the command-line budget."""
    lines = (line.strip() for line in script.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("#"))


def encode(script: str) -> str:
    """-EncodedCommand takes base64 of the UTF-16LE script text."""
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def command(script: str | None = None) -> list[str]:
    body = compact(script_source() if script is None else script)
    return [POWERSHELL, *BASE_ARGS, encode(body)]


def command_line_length(argv: list[str]) -> int:
    """Length of the command line Windows would build (quotes only where an argument needs them)."""
    return sum(len(a) + (2 if (" " in a or not a) else 0) for a in argv) + len(argv) - 1


def parse(raw: bytes) -> Mapping[str, Any]:
    data = load_json_snapshot(raw)
    schema = data.get("schema")
    if schema != SCHEMA or isinstance(schema, bool):
        raise ParseError("Windows snapshot", f"schema {schema!r}, expected {SCHEMA}")
    return data


def collect(runner: Runner) -> Mapping[str, Any]:
    """Run the snapshot script once; its exit code and output are checked, never trusted."""
    result = runner.run(command()).check()
    return parse(result.stdout)


def load_json_snapshot(raw: bytes) -> Mapping[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError("Windows snapshot", str(exc)) from exc
    if not isinstance(data, dict):
        raise ParseError("Windows snapshot", "top level is not an object")
    return data
