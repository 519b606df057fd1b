"""Locale-neutral messages: a catalogue key plus parameters, rendered late in any language.

Core code never builds user-facing sentences itself; it returns a ``Message`` so the CLI, the tray,
the JSON report and the help-desk bundle can each show it in Japanese and English.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

ParamValue = str | int | float


@dataclass(frozen=True)
class Message:
    key: str
    params: Mapping[str, ParamValue] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))


def msg(key: str, **params: ParamValue) -> Message:
    return Message(key, params)
