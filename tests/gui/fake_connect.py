"""A stand-in for ``byod-agent connect TARGET --events`` where no real session can run offscreen.

It speaks the real protocol (one JSON object per line on stdout) following a scenario named in
argv[1]; SIGTERM ends it with "ended: stopped", as the core does. ``stubborn`` ignores SIGTERM so
the tray's kill-after-grace path runs for real.
"""

from __future__ import annotations

import json
import signal
import sys
import time

REASON = {"ja": "ディスクが暗号化されていません", "en": "The disk is not encrypted"}


def say(**event: object) -> None:
    sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def main() -> int:
    scenario, target = sys.argv[1], sys.argv[2]

    def stopped(_sig: int, _frame: object) -> None:
        say(event="ended", reason="stopped", correlation_id="CID12345")
        sys.exit(0)

    signal.signal(signal.SIGTERM, signal.SIG_IGN if scenario == "stubborn" else stopped)
    say(event="checking", target=target)
    if scenario.startswith("credentials:"):  # record what the tray handed over, then run
        with open(scenario.split(":", 1)[1], "w", encoding="utf-8") as fh:
            json.dump({"argv": sys.argv[3:], "stdin": sys.stdin.readline()}, fh)
    if scenario == "blocked":
        say(event="blocked", correlation_id="CID12345", reasons=[REASON])
        return 3
    if scenario == "error":
        say(event="error", step="tls", message={"ja": "ゲートウェイの証明書を確認できません",
                                                "en": "The gateway certificate is not trusted"})
        return 4
    if scenario == "silent_crash":
        return 4
    say(event="started", target=target, correlation_id="CID12345", client_pid=4242)
    if scenario in ("session", "stubborn"):
        # Half a line first: the reader must wait for the rest.
        sys.stdout.write('{"event":"noncompliant","grace_seconds":30,')
        sys.stdout.flush()
        time.sleep(0.2)
        sys.stdout.write(f'"reasons":[{json.dumps(REASON, ensure_ascii=False)}]}}\n')
        sys.stdout.write("this is not protocol\n")
        sys.stdout.flush()
        say(event="countdown", remaining_seconds=20)
        say(event="recovered")
    if scenario == "ends_noncompliant":
        say(event="noncompliant", grace_seconds=1, reasons=[REASON])
        say(event="ended", reason="noncompliant", correlation_id="CID12345")
        return 0
    while True:  # the session runs until the user disconnects
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
