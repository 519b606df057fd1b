"""May the user press Connect now, and if not, why: decided here and nowhere else.

The status window's button, the tray menu's entries and the controller that starts a session all
ask ``connect_gate``; none of them looks at the view's fields itself. The policy decision stays
the authority (``StatusView.connect_allowed``); this adds the screen's own conditions (still
checking, the check broke, no approved target, a session already running) and says why in two
lengths: ``reason`` for the window (a sentence) and ``short`` for the menu (one short line, so the
menu stays narrow and never points at "items marked above" where nothing is marked).
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.core import i18n
from agent.presentation.status_view import StatusView, TrayState, attention_rows, need_text

MENU_MAX = 40  # characters of the menu's short reason (a Japanese menu line stays < ~400 px)


@dataclass(frozen=True)
class Gate:
    enabled: bool
    reason: str = ""  # the window's sentence; empty when enabled
    short: str = ""  # the menu's one short line; empty when enabled


def _clip(text: str) -> str:
    return text if len(text) <= MENU_MAX else text[:MENU_MAX - 1] + "…"


def connect_gate(view: StatusView, lang: str, *, session_active: bool = False,
                 target_id: str | None = None) -> Gate:
    """The one rule. ``target_id`` None asks about Connect in general (the window's button)."""
    def off(key: str, short_key: str, **params: object) -> Gate:
        return Gate(False, i18n.text(key, lang, **params), i18n.text(short_key, lang, **params))

    if session_active:
        return off("ui.connect.session_running", "ui.connect.short.session_running")
    if view.state is TrayState.CHECKING:
        return off("ui.connect.checking", "ui.connect.short.checking")
    if view.state is TrayState.ERROR:
        return off("ui.connect.error", "ui.connect.short.error")
    if not view.connect_allowed:
        needs = attention_rows(view)
        reason = view.connect_reason or i18n.text("ui.connect.blocked", lang)
        if not needs:  # refused for a reason of the policy's own (no row to point at)
            default = reason == i18n.text("ui.connect.blocked", lang)  # "items marked above"
            short = i18n.text("ui.connect.short.blocked", lang) if default else reason
            return Gate(False, reason, _clip(short))
        short = need_text(needs[0].check_id, lang)
        if len(needs) > 1:
            short = i18n.text("ui.connect.short.and_more", lang, first=short,
                              more=len(needs) - 1)
        return Gate(False, reason, _clip(short))
    if not view.targets:
        return off("ui.connect.no_targets", "ui.connect.short.no_targets")
    if target_id is not None and all(t.id != target_id for t in view.targets):
        return off("ui.connect.unknown_target", "ui.connect.short.unknown_target")
    return Gate(True)
