"""Child process for test_wake.py: runs ui.wake in its own QCoreApplication and prints what it saw.

``clock``: the clock-gap detector alone (the test moves this process's wall clock with
libfaketime). ``dbus``: the full WakeWatcher on the buses named by DBUS_SYSTEM_BUS_ADDRESS /
DBUS_SESSION_BUS_ADDRESS; a second connection of this process plays logind and the screensaver.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtDBus import QDBusConnection, QDBusMessage

from ui.wake import ClockJumpDetector, WakeWatcher


def _signal(bus: QDBusConnection, service: str, path: str, iface: str, name: str) -> None:
    if not bus.registerService(service):
        print(f"cannot own {service}", flush=True)
    m = QDBusMessage.createSignal(path, iface, name)
    m.setArguments([False])
    bus.send(m)


def main() -> int:
    mode = sys.argv[1]
    app = QCoreApplication(sys.argv[:1])
    seen: list[str] = []
    if mode == "clock":
        det = ClockJumpDetector(interval_ms=200, tolerance_s=5)
        det.jumped.connect(lambda gap: (print(f"jumped {gap:.0f}", flush=True), app.quit()))
        det.start()
        QTimer.singleShot(600, lambda: print("ready", flush=True))
    else:
        watcher = WakeWatcher(ClockJumpDetector(interval_ms=60_000))
        def saw(reason: str) -> None:
            seen.append(reason)
            if len(seen) >= 2:
                app.quit()

        watcher.woke.connect(saw)
        watcher.start()
        print("sources " + ",".join(watcher.sources), flush=True)
        system = QDBusConnection.connectToBus(QDBusConnection.BusType.SystemBus, "fake-logind")
        session = QDBusConnection.connectToBus(QDBusConnection.BusType.SessionBus, "fake-saver")
        QTimer.singleShot(200, lambda: _signal(system, "org.freedesktop.login1",
                                               "/org/freedesktop/login1",
                                               "org.freedesktop.login1.Manager",
                                               "PrepareForSleep"))
        QTimer.singleShot(400, lambda: _signal(session, "org.freedesktop.ScreenSaver",
                                               "/org/freedesktop/ScreenSaver",
                                               "org.freedesktop.ScreenSaver", "ActiveChanged"))
    QTimer.singleShot(20_000, app.quit)
    app.exec()
    if mode != "clock":
        print("woke " + ",".join(seen), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
