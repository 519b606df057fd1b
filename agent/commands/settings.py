"""``byod-agent settings show|set KEY VALUE``: the settings, which of them IT locked, and the
user's own choice for the others. A locked key is refused (exit 2) with who locked it."""

from __future__ import annotations

import argparse

from agent.core import exitcodes, i18n
from agent.posture.context import current_os
from agent.settings import store
from agent.settings.managed import KEYS


def show(args: argparse.Namespace) -> int:
    lang = args.lang or i18n.detect_language()
    managed, values = store.current(current_os())
    for key in KEYS:
        entry = managed.locked.get(key)
        where = i18n.text(f"settings.show.locked.{entry.source.value}", lang) if entry else \
            i18n.text("settings.show.user", lang)
        value = values[key]
        shown = i18n.text("settings.value.on" if value else "settings.value.off", lang) \
            if isinstance(value, bool) else (value or "-")
        print(i18n.text("settings.show.line", lang, setting=key, value=shown, where=where))
    return exitcodes.OK


def set_(args: argparse.Namespace) -> int:
    lang = args.lang or i18n.detect_language()
    managed, _ = store.current(current_os())
    value = store.parse_cli_value(args.key, args.value)
    store.set_value(store.default_path(), managed, args.key, value)  # SettingLocked -> exit 2
    print(i18n.text("settings.set_done", lang, setting=args.key))
    return exitcodes.OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("settings", help="cli.settings.help", description="cli.settings.help",
                       epilog="cli.settings.exit")
    ssub = p.add_subparsers(dest="settings_command", title="cli.commands")
    s = ssub.add_parser("show", help="cli.settings.show", description="cli.settings.show")
    s.set_defaults(handler=show)
    st = ssub.add_parser("set", help="cli.settings.set", description="cli.settings.set")
    st.add_argument("key", choices=tuple(KEYS), help="cli.settings.key")
    st.add_argument("value", help="cli.settings.value")
    st.set_defaults(handler=set_)
    p.set_defaults(handler=show)
