"""``byod-agent policy show|update``: the policy in force and why others were refused; updates."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from agent.core import exitcodes, i18n, paths
from agent.core.messages import Message, msg
from agent.policy import fetch
from agent.policy.decision import policy_to_json
from agent.policy.errors import FetchFailed, PolicyRefused
from agent.policy.loader import resolve_active
from agent.policy.model import LoadedPolicy
from agent.policy.schema import JST
from agent.policy.signing import load_trust_anchors
from agent.policy.state import PolicyState, Refusal
from agent.posture.engine import utc_now


def _both(m: Message) -> dict[str, str]:
    return i18n.both(m)


def refusal_to_json(r: Refusal) -> dict[str, Any]:
    return {"at": r.at, "source": r.source, "path": r.path, "reason_key": r.message.key,
            "reason": _both(r.message), "detail": r.detail}


def _jst(t: datetime) -> str:
    """Staff read times in Japan time."""
    return t.astimezone(JST).strftime("%Y-%m-%d %H:%M JST")


def _show_text(loaded: LoadedPolicy | None, refusals: list[Refusal], lang: str) -> str:
    t = i18n.text
    lines = [t("policy.show.title", lang), ""]
    if loaded is None:
        lines.append(t("policy.show.none", lang))
    else:
        p = loaded.policy
        lines.append(t("policy.show.id", lang, id=p.id))
        if loaded.demo:
            lines.append(t("policy.show.demo", lang))
        lines.append(t("policy.show.source", lang,
                       source=t(f"policy.source.{loaded.source}", lang), path=loaded.path))
        lines.append(t("policy.show.serial", lang, serial=p.serial))
        lines.append(t("policy.show.validity", lang, not_before=_jst(p.not_before),
                       expires=_jst(p.expires)))
        lines.append(t("policy.show.signed_by", lang, anchor=loaded.signer, key_id=loaded.key_id))
        lines.append(t("policy.show.recheck", lang, minutes=p.recheck_interval_minutes))
        names = ", ".join(tg.name_ja if lang == "ja" else tg.name_en for tg in p.targets) or "-"
        lines.append(t("policy.show.targets", lang, targets=names))
    if refusals:
        lines += ["", t("policy.show.refused_title", lang)]
        lines += ["  " + t("policy.show.refused_item", lang, at=r.at,
                           source=t(f"policy.source.{r.source}", lang), path=r.path,
                           reason=i18n.render(r.message, lang)) for r in refusals]
    return "\n".join(lines)


def show(args: argparse.Namespace) -> int:
    lang = args.lang or i18n.detect_language()
    state = PolicyState(paths.state_dir())
    try:
        resolution = resolve_active(state, load_trust_anchors(), now=utc_now())
        refusals = state.refusals()
        loaded = resolution.loaded
    except PolicyRefused as exc:  # the state file itself is unreadable
        loaded, refusals = None, [Refusal(utc_now().isoformat(), "installed", str(state.file),
                                          exc.message, exc.detail)]
    if args.json:
        print(json.dumps({"policy": policy_to_json(loaded) if loaded else None,
                          "refused": [refusal_to_json(r) for r in refusals]},
                         ensure_ascii=False, indent=2))
    else:
        print(_show_text(loaded, refusals, lang))
    return exitcodes.OK if loaded else exitcodes.USAGE


def update(args: argparse.Namespace) -> int:
    lang = args.lang or i18n.detect_language()
    state = PolicyState(paths.state_dir())
    anchors = load_trust_anchors()
    now = utc_now()

    def say(m: Message, code: int, err: bool = False) -> int:
        print(i18n.render(m, lang), file=sys.stderr if err else sys.stdout)
        return code

    try:
        resolution = resolve_active(state, anchors, now=now)
        if resolution.loaded is None or resolution.loaded.policy.update is None:
            return say(msg("policy.fetch.no_update_url"), exitcodes.OK)
        result = fetch.fetch_update(resolution.loaded.policy.update, state, anchors, now=now)
    except FetchFailed as exc:  # offline: the cached policy stays until it expires
        say(exc.message, exitcodes.NOT_COMPLIANT, err=True)
        return say(msg("policy.fetch.kept"), exitcodes.NOT_COMPLIANT, err=True)
    except PolicyRefused as exc:
        say(exc.message, exitcodes.USAGE, err=True)
        return say(msg("policy.fetch.kept"), exitcodes.USAGE, err=True)
    if result.loaded is None:
        return say(msg("policy.fetch.not_modified"), exitcodes.OK)
    return say(msg("policy.fetch.updated", id=result.loaded.policy.id,
                   serial=result.loaded.policy.serial), exitcodes.OK)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("policy", help="show the city's policy in force, or fetch an update")
    psub = p.add_subparsers(dest="policy_command")
    s = psub.add_parser("show", help="the policy in force, its source, expiry, refusals")
    s.add_argument("--json", action="store_true")
    s.add_argument("--lang", choices=i18n.LANGS)
    s.set_defaults(handler=show)
    u = psub.add_parser("update", help="download the policy update now (HTTPS, verified)")
    u.add_argument("--lang", choices=i18n.LANGS)
    u.set_defaults(handler=update)
    p.set_defaults(handler=show, json=False, lang=None)
