"""``byod-agent policy show|update``: the policy in force and why others were refused; updates.

Exit codes: ``show`` 0 a policy is in force, 2 none is; ``update`` 0 updated, unchanged or no
update address, 2 the downloaded policy was refused, 6 the server could not be reached or answered
badly (the cached policy stays in force until it expires).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from agent.core import exitcodes, i18n, paths
from agent.core.messages import Message, msg
from agent.policy import auto, fetch, schedule
from agent.policy.decision import policy_to_json
from agent.policy.errors import PolicyRefused
from agent.policy.loader import refusal_error, resolve_active
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


def update_to_json(loaded: LoadedPolicy | None, status: schedule.UpdateStatus,
                   now: datetime) -> dict[str, Any]:
    """The automatic update's state for `policy show --json` and the status view."""
    doc = status.to_json()
    doc.pop("jitter", None)
    doc.pop("network", None)
    src = loaded.policy.update if loaded else None
    at = schedule.due_at(status.with_jitter(), src.interval_hours) if src else None
    doc["next_due"] = (at or now).isoformat().replace("+00:00", "Z") if src else None
    doc["reason"] = _both(status.last_reason) if status.last_reason else None
    doc["notices"] = [{"level": n.level, "key": n.message.key, **_both(n.message)}
                      for n in (schedule.lifetime_notices(loaded.policy, now, status)
                                if loaded else [])]
    return doc


def _update_lines(loaded: LoadedPolicy | None, status: schedule.UpdateStatus, lang: str,
                  now: datetime) -> list[str]:
    t = i18n.text
    src = loaded.policy.update if loaded else None
    lines = []
    if src is not None:
        lines.append(t("policy.show.update_server", lang, url=src.url, hours=src.interval_hours))
    result = t(f"policy.update.result.{status.last_result}", lang) \
        if status.last_result in ("never", "updated", "not_modified", "offline", "refused") \
        else status.last_result
    if status.last_attempt is not None:
        lines.append(t("policy.show.update_last", lang, at=_jst(status.last_attempt),
                       result=result))
        if status.last_reason is not None:
            lines.append("  " + t("policy.show.update_reason", lang,
                                  reason=i18n.render(status.last_reason, lang)))
    if status.last_contact is not None:
        lines.append(t("policy.show.update_contact", lang, at=_jst(status.last_contact)))
    if src is not None:
        at = schedule.due_at(status.with_jitter(), src.interval_hours) or now
        lines.append(t("policy.show.update_next", lang, at=_jst(max(at, now))))
    if loaded is not None:
        lines += [t("policy.show.notice", lang, text=i18n.render(n.message, lang))
                  for n in schedule.lifetime_notices(loaded.policy, now, status)]
    return lines


def _show_text(loaded: LoadedPolicy | None, refusals: list[Refusal], lang: str,
               status: schedule.UpdateStatus | None = None) -> str:
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
    if status is not None:
        lines += _update_lines(loaded, status, lang, utc_now())
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
    status = fetch.read_status(state)
    if args.json:
        print(json.dumps({"policy": policy_to_json(loaded) if loaded else None,
                          "update": update_to_json(loaded, status, utc_now()),
                          "refused": [refusal_to_json(r) for r in refusals]},
                         ensure_ascii=False, indent=2))
    else:
        print(_show_text(loaded, refusals, lang, status))
    return exitcodes.OK if loaded else exitcodes.USAGE


def update(args: argparse.Namespace) -> int:
    """Ask the update server now. 0: a policy is in force (updated or up to date); 6: offline,
    the policy in force stays; 2: refused, or no policy in force and nothing could provide one."""
    lang = args.lang or i18n.detect_language()
    state = PolicyState(paths.state_dir())
    now = utc_now()

    def say(m: Message, code: int, err: bool = False) -> int:
        print(i18n.render(m, lang), file=sys.stderr if err else sys.stdout)
        return code

    try:
        out = auto.refresh(state, load_trust_anchors(), now=now, force=True)
    except PolicyRefused as exc:  # the state file itself is unreadable
        return say(exc.message, exitcodes.USAGE, err=True)
    loaded = out.resolution.loaded
    if out.result == "no_source":
        if loaded is not None:
            return say(msg("policy.fetch.no_update_url"), exitcodes.OK)
        say(refusal_error(out.resolution).message, exitcodes.USAGE, err=True)
        return say(msg("policy.update.stranded"), exitcodes.USAGE, err=True)
    if out.result in ("offline", "refused") and out.reason is not None:
        say(out.reason, exitcodes.USAGE, err=True)
        if loaded is None:
            say(refusal_error(out.resolution).message, exitcodes.USAGE, err=True)
            return say(msg("policy.update.still_none"), exitcodes.USAGE, err=True)
        say(msg("policy.fetch.kept"), exitcodes.USAGE, err=True)
        return exitcodes.OFFLINE if out.result == "offline" else exitcodes.USAGE
    if loaded is None:  # downloaded, yet nothing usable (e.g. the download is expired too)
        say(refusal_error(out.resolution).message, exitcodes.USAGE, err=True)
        return say(msg("policy.update.still_none"), exitcodes.USAGE, err=True)
    if out.result == "not_modified":
        return say(msg("policy.fetch.not_modified"), exitcodes.OK)
    return say(msg("policy.fetch.updated", id=loaded.policy.id, serial=loaded.policy.serial),
               exitcodes.OK)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("policy", help="cli.policy.help", description="cli.policy.help",
                       epilog="cli.policy.exit")
    psub = p.add_subparsers(dest="policy_command", title="cli.commands")
    s = psub.add_parser("show", help="cli.policy.show", description="cli.policy.show",
                        epilog="cli.policy.show.exit")
    s.add_argument("--json", action="store_true", help="cli.opt.json")
    s.set_defaults(handler=show)
    u = psub.add_parser("update", help="cli.policy.update", description="cli.policy.update",
                        epilog="cli.policy.update.exit")
    u.set_defaults(handler=update)
    p.set_defaults(handler=show, json=False)
