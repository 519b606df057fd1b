"""The batched Windows snapshot: one PowerShell call answers every Windows check.

Japanese Windows localizes command text, so no check parses it; instead ``windows_snapshot.ps1``
reads registry values, CIM classes and COM objects and prints one UTF-8 JSON object whose shape is
documented in docs/windows-snapshot.md. ``collect`` is a pure function of the runner, so tests feed
it recorded outputs and faults exactly as they would reach it on a real PC.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any
from xml.etree import ElementTree

from agent.core.errors import CommandFailed, ParseError, ProbeError
from agent.core.messages import msg
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


# PowerShell started with redirected streams writes its error records to stderr as CLIXML:
# "#< CLIXML" then <Objs ...><S S="Error">text_x000D__x000A_</S>...</Objs> (PowerShell/PowerShell
# issues #5912 and #13501 show it); characters XML cannot carry are escaped as _xHHHH_.
CLIXML_MARK = "#< CLIXML"
_CLIXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_MAX_STDERR = 64 * 1024


def decode_clixml(stderr: str) -> str:
    """The error text of a CLIXML stderr, readable for the help desk; other text unchanged."""
    text = stderr.lstrip("\ufeff").lstrip()
    if not text.startswith(CLIXML_MARK):
        return stderr
    body = text[len(CLIXML_MARK):].strip()[:_MAX_STDERR]
    try:  # the agent's own child wrote it; no DTDs or entities reach ElementTree from here
        root = ElementTree.fromstring(body)  # noqa: S314
    except ElementTree.ParseError:
        return _CLIXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)),
                                  re.sub(r"<[^>]{0,200}>", " ", body)).strip()
    parts = [el.text or "" for el in root.iter() if el.tag.endswith("}S") and
             el.get("S") in ("Error", "Warning")]
    joined = "".join(parts) or " ".join(el.text or "" for el in root.iter() if el.text)
    return _CLIXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), joined).strip()


class ConstrainedLanguage(ProbeError):
    """PowerShell ran in Constrained Language mode: the snapshot could not read anything."""

    def __init__(self, mode: str) -> None:
        super().__init__(msg("probe.windows_constrained_language", mode=mode[:40]),
                         f"PowerShell language mode {mode[:40]}: snapshot not collected")
        self.mode = mode


def language_mode(snapshot: Mapping[str, Any]) -> str | None:
    """None for FullLanguage (or an older snapshot that does not say), else the mode's name."""
    mode = snapshot.get("language_mode")
    if mode is None or mode == "FullLanguage":
        return None
    return str(mode)


def collect(runner: Runner, timeout: float | None = None) -> Mapping[str, Any]:
    """Run the snapshot script once; its exit code and output are checked, never trusted."""
    result = runner.run(command(), timeout=timeout)
    if result.returncode != 0:
        raw = result.stderr[:_MAX_STDERR].decode("utf-8", errors="replace")
        raise CommandFailed(POWERSHELL, result.returncode, decode_clixml(raw))
    return parse(result.stdout)


def load_json_snapshot(raw: bytes) -> Mapping[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError("Windows snapshot", str(exc)) from exc
    if not isinstance(data, dict):
        raise ParseError("Windows snapshot", "top level is not an object")
    return data
