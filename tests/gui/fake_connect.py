"""A stand-in for ``byod-agent connect TARGET --events`` where no real session can run offscreen.

It speaks the real protocol, built and serialised by agent.session.events (the producer's own
encoder), following a scenario named in argv[1]; SIGTERM ends it with "ended: stopped", as the
core does. ``stubborn`` ignores SIGTERM so
the tray's kill-after-grace path runs for real.
"""

from __future__ import annotations

import json
import signal
import sys
import time

from agent.session import events
from agent.session.events import EndReason, SessionEvent, Step, Text

REASON = Text("ディスクが暗号化されていません", "The disk is not encrypted")


def say(event: SessionEvent) -> None:
    sys.stdout.write(events.encode(event) + "\n")
    sys.stdout.flush()


def main() -> int:
    scenario, target = sys.argv[1], sys.argv[2]

    def stopped(_sig: int, _frame: object) -> None:
        say(events.ended(EndReason.STOPPED, "CID12345"))
        sys.exit(0)

    signal.signal(signal.SIGTERM, signal.SIG_IGN if scenario == "stubborn" else stopped)
    say(events.checking(target))
    if scenario.startswith("credentials:"):  # record what the tray handed over, then run
        with open(scenario.split(":", 1)[1], "w", encoding="utf-8") as fh:
            json.dump({"argv": sys.argv[3:], "stdin": sys.stdin.readline()}, fh)
    if scenario == "blocked":
        say(events.blocked("CID12345", (REASON,)))
        return 3
    if scenario == "error":
        say(events.error(Step.TLS, "gateway certificate not trusted"))
        return 4
    if scenario == "silent_crash":
        return 4
    say(events.started(target, "CID12345", 4242))
    if scenario in ("session", "stubborn"):
        # Half a line first: the reader must wait for the rest.
        line = events.encode(events.noncompliant(30, (REASON,), None))
        sys.stdout.write(line[:30])
        sys.stdout.flush()
        time.sleep(0.2)
        sys.stdout.write(line[30:] + "\n")
        sys.stdout.write("this is not protocol\n")
        sys.stdout.flush()
        say(events.countdown(20))
        say(events.recovered(None))
    if scenario == "ends_noncompliant":
        say(events.noncompliant(1, (REASON,), None))
        say(events.ended(EndReason.NONCOMPLIANT, "CID12345"))
        return 0
    while True:  # the session runs until the user disconnects
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
