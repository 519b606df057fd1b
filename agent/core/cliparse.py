"""argparse in the user's language: usage, help, argparse's own words and its error messages.

argparse builds its English words through ``gettext`` bound at import time, so they cannot be
switched per run without patching the standard library. Instead:

- ``LocalizedParser`` renames the "positional arguments"/"options" groups, adds its own ``-h``,
  and passes its language to ``LocalizedFormatter``, which translates the "usage: " prefix and any
  help, description or epilogue text that is a catalogue key (commands write ``help="cli.…"``;
  plain text passes through unchanged);
- ``translate_error`` turns argparse's English error sentences back into their template (the
  templates of Python 3.11's argparse, listed below) and renders our translation with the same
  values. A sentence no template matches is shown as argparse wrote it.

Usage errors exit 2 with the usage of the (sub)command that was wrong.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from agent.core import exitcodes, i18n

# argparse's English templates (Python 3.11 argparse.py) -> our catalogue keys.
_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("argument %(argument_name)s: %(message)s", "cli.argparse.argument"),
    ("unknown parser %(parser_name)r (choices: %(choices)s)", "cli.argparse.unknown_parser"),
    ("unrecognized arguments: %s", "cli.argparse.unrecognized"),
    ("not allowed with argument %s", "cli.argparse.not_allowed_with"),
    ("ignored explicit argument %r", "cli.argparse.ignored_explicit"),
    ("the following arguments are required: %s", "cli.argparse.required"),
    ("one of the arguments %s is required", "cli.argparse.one_of_required"),
    ("expected one argument", "cli.argparse.expected_one"),
    ("expected at most one argument", "cli.argparse.expected_at_most_one"),
    ("expected at least one argument", "cli.argparse.expected_at_least_one"),
    ("expected %s argument", "cli.argparse.expected_n"),
    ("expected %s arguments", "cli.argparse.expected_n"),
    ("ambiguous option: %(option)s could match %(matches)s", "cli.argparse.ambiguous"),
    ("unexpected option string: %s", "cli.argparse.unexpected_option"),
    ("invalid %(type)s value: %(value)r", "cli.argparse.invalid_value"),
    ("invalid choice: %(value)r (choose from %(choices)s)", "cli.argparse.invalid_choice"),
    ("1..86400", "cli.argparse.range_seconds"),
)
_PLACEHOLDER = re.compile(r"%\((\w+)\)[sr]|%[sr]")


def _compile(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for n, m in enumerate(_PLACEHOLDER.finditer(template)):
        out.append(re.escape(template[pos:m.start()]))
        name = m.group(1) or f"arg{n}"
        out.append(f"(?P<{name}>.*?)")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (_compile(t), k) for t, k in _TEMPLATES)


def translate_error(message: str, lang: str) -> str:
    """argparse's English error sentence in ``lang`` (unchanged when no template matches)."""
    for pattern, key in _PATTERNS:
        m = pattern.match(message)
        if m is None:
            continue
        params: dict[str, object] = dict(m.groupdict())
        if key == "cli.argparse.argument":
            params["message"] = translate_error(str(params["message"]), lang)
        return i18n.text(key, lang, **params)
    return message


def _is_key(text: str) -> bool:
    return text.startswith("cli.") and text in i18n.catalogue("en")


class LocalizedFormatter(argparse.RawDescriptionHelpFormatter):
    """Help in ``lang``: catalogue keys in help/description/epilog are rendered; newlines kept."""

    def __init__(self, prog: str, lang: str = i18n.DEFAULT_LANG, **kwargs: Any) -> None:
        super().__init__(prog, **kwargs)
        self.lang = lang

    def add_usage(self, usage: str | None, actions: Iterable[argparse.Action],
                  groups: Iterable[argparse._MutuallyExclusiveGroup],
                  prefix: str | None = None) -> None:
        if prefix is None:
            prefix = i18n.text("cli.argparse.usage", self.lang)
        super().add_usage(usage, actions, groups, prefix)

    def add_text(self, text: str | None) -> None:
        if text and _is_key(text):
            text = i18n.text(text, self.lang)
        super().add_text(text)

    def start_section(self, heading: str | None) -> None:
        if heading and _is_key(heading):
            heading = i18n.text(heading, self.lang)
        super().start_section(heading)

    def _expand_help(self, action: argparse.Action) -> str:
        if action.help and _is_key(action.help):
            action = _copy_with_help(action, i18n.text(action.help, self.lang))
        return super()._expand_help(action)


def _copy_with_help(action: argparse.Action, text: str) -> argparse.Action:
    clone = argparse.Action.__new__(type(action))
    clone.__dict__.update(action.__dict__)
    clone.help = text.replace("%", "%%")
    return clone


class _LocalizedSubParsers(argparse._SubParsersAction):  # type: ignore[type-arg]
    lang: str = i18n.DEFAULT_LANG

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("lang", self.lang)
        parser: argparse.ArgumentParser = super().add_parser(name, **kwargs)
        parser.set_defaults(_usage_parser=parser)  # the deepest parser chosen wins
        return parser


class LocalizedParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage, help and errors are in ``lang`` (exit 2 on a usage error)."""

    def __init__(self, *args: Any, lang: str = i18n.DEFAULT_LANG, **kwargs: Any) -> None:
        self.lang = lang
        kwargs["add_help"] = False
        kwargs.setdefault("formatter_class", LocalizedFormatter)
        super().__init__(*args, **kwargs)
        self._positionals.title = i18n.text("cli.argparse.positionals", lang)
        self._optionals.title = i18n.text("cli.argparse.options", lang)
        self.register("action", "parsers", _LocalizedSubParsers)
        self.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS,
                          help="cli.argparse.help")

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", type(self))
        action = super().add_subparsers(**kwargs)
        if isinstance(action, _LocalizedSubParsers):
            action.lang = self.lang
        return action

    def _get_formatter(self) -> argparse.HelpFormatter:
        cls: Any = self.formatter_class
        if isinstance(cls, type) and issubclass(cls, LocalizedFormatter):
            return cls(prog=self.prog, lang=self.lang)
        return super()._get_formatter()

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        text = translate_error(message, self.lang)
        self.exit(exitcodes.USAGE,
                  i18n.text("cli.argparse.error", self.lang, prog=self.prog, message=text) + "\n")

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        """Like argparse, but an unknown option is reported by the subcommand it was given to."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            owner = getattr(parsed, "_usage_parser", None) or self
            owner.error(i18n.text("cli.argparse.unrecognized", self.lang, arg0=" ".join(extras)))
        return parsed


def name_subcommands(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand group a ``{a,b,c}`` metavar, so a missing one is named that way."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            if action.metavar is None and action.choices:
                action.metavar = "{" + ",".join(action.choices) + "}"
            for sub in set(action.choices.values()):
                name_subcommands(sub)
