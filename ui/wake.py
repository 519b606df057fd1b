"""Tell the tray when the PC resumed from sleep or was unlocked, wherever the platform says so.

- Linux: org.freedesktop.login1.Manager.PrepareForSleep(false) on the system bus (logind says
  the system just resumed) and ActiveChanged(false) of org.freedesktop.ScreenSaver /
  org.gnome.ScreenSaver on the session bus (screen unlocked), through QtDBus (in
  PySide6-Essentials).
- Windows: WM_POWERBROADCAST (resume) and WM_WTSSESSION_CHANGE (unlock, after
  WTSRegisterSessionNotification) seen by a native event filter.
- macOS: NSWorkspaceDidWakeNotification and the screen-unlock distributed notification are not
  reachable from Qt without pyobjc, so there only the clock-gap detector below works.
- Everywhere: a timer that compares wall and monotonic time (agent.presentation.recheck.clock_gap).

Network changes come from QNetworkInformation in ui/tray.py.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import time
from collections.abc import Callable
from ctypes import wintypes

from PySide6.QtCore import (
    SLOT,
    QAbstractNativeEventFilter,
    QCoreApplication,
    QObject,
    QTimer,
    Signal,
    Slot,
)

try:
    from PySide6.QtDBus import QDBusConnection
except ImportError:  # an installer may slim QtDBus away
    QDBusConnection = None  # type: ignore[assignment,misc]

from agent.presentation.recheck import ClockSample, clock_gap, windows_wake_reason

log = logging.getLogger(__name__)

Clock = Callable[[], float]

_LOGIN1 = ("org.freedesktop.login1", "/org/freedesktop/login1",
           "org.freedesktop.login1.Manager", "PrepareForSleep")
_SCREENSAVERS = (("org.freedesktop.ScreenSaver", "/org/freedesktop/ScreenSaver",
                  "org.freedesktop.ScreenSaver", "ActiveChanged"),
                 ("org.gnome.ScreenSaver", "/org/gnome/ScreenSaver",
                  "org.gnome.ScreenSaver", "ActiveChanged"))


class ClockJumpDetector(QObject):
    """A timer that notices time it did not see pass (suspend, clock set): works on every OS."""

    jumped = Signal(float)  # seconds unaccounted for

    def __init__(self, interval_ms: int = 30_000, tolerance_s: float = 20.0,
                 wall: Clock = time.time, mono: Clock = time.monotonic,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._wall, self._mono = wall, mono
        self._tolerance = tolerance_s
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self._last = self._sample()

    def _sample(self) -> ClockSample:
        return ClockSample(self._wall(), self._mono())

    def start(self) -> None:
        self._last = self._sample()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = self._sample()
        gap = clock_gap(self._last, now, self.timer.interval() / 1000, self._tolerance)
        self._last = now
        if gap is not None:
            log.info("clock gap of %.0f s: the PC slept or its clock was set", gap)
            self.jumped.emit(gap)


class _DBusReceiver(QObject):
    resumed = Signal()
    unlocked = Signal()

    @Slot(bool)
    def prepare_for_sleep(self, going_down: bool) -> None:
        if not going_down:
            self.resumed.emit()

    @Slot(bool)
    def active_changed(self, active: bool) -> None:
        if not active:
            self.unlocked.emit()


class _WindowsFilter(QAbstractNativeEventFilter):
    def __init__(self, on_wake: Callable[[str], None]) -> None:
        super().__init__()
        self._on_wake = on_wake

    def nativeEventFilter(self, event_type: object, message: object) -> tuple[bool, int]:
        if bytes(event_type) == b"windows_generic_MSG":  # type: ignore[call-overload]
            msg = wintypes.MSG.from_address(int(message))  # type: ignore[call-overload]
            reason = windows_wake_reason(msg.message, msg.wParam)
            if reason is not None:
                self._on_wake(reason)
        return False, 0


class WakeWatcher(QObject):
    """One ``woke(reason)`` signal for everything above; ``sources`` says what is connected."""

    woke = Signal(str)  # "resume", "unlock" or "clock"

    def __init__(self, clock: ClockJumpDetector | None = None, *, platform: bool = True,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._platform = platform  # False: the clock detector only (tests, no buses)
        self.clock = clock or ClockJumpDetector(parent=self)
        self.clock.jumped.connect(lambda _gap: self.woke.emit("clock"))
        self.sources: list[str] = ["clock"]
        self._dbus = _DBusReceiver(self)
        self._dbus.resumed.connect(lambda: self.woke.emit("resume"))
        self._dbus.unlocked.connect(lambda: self.woke.emit("unlock"))
        self._filter: _WindowsFilter | None = None

    def start(self, hwnd: int | None = None) -> None:
        self.clock.start()
        if not self._platform:
            return
        if sys.platform.startswith("linux"):
            self._connect_dbus()
        elif sys.platform == "win32":
            self._connect_windows(hwnd)

    def stop(self) -> None:
        self.clock.stop()
        app = QCoreApplication.instance()
        if self._filter is not None and app is not None:
            app.removeNativeEventFilter(self._filter)
            self._filter = None

    def _connect_dbus(self) -> None:
        if QDBusConnection is None:  # a slimmed build without QtDBus: the clock detector remains
            log.info("QtDBus not available: resume and unlock come from the clock detector only")
            return
        system = QDBusConnection.systemBus()
        service, path, iface, name = _LOGIN1
        # The stubs want a bytes slot; PySide takes SLOT()'s str (checked against a real bus).
        if system.isConnected() and system.connect(  # type: ignore[call-overload]
                service, path, iface, name, self._dbus, SLOT("prepare_for_sleep(bool)")):
            self.sources.append("login1")
        session = QDBusConnection.sessionBus()
        if session.isConnected():
            for service, path, iface, name in _SCREENSAVERS:
                if session.connect(  # type: ignore[call-overload]
                        service, path, iface, name, self._dbus, SLOT("active_changed(bool)")):
                    self.sources.append(service)
        log.info("wake sources: %s", ", ".join(self.sources))

    def _connect_windows(self, hwnd: int | None) -> None:
        app = QCoreApplication.instance()
        if app is None:
            return
        self._filter = _WindowsFilter(self.woke.emit)
        app.installNativeEventFilter(self._filter)
        self.sources.append("WM_POWERBROADCAST")
        if hwnd:
            try:  # session lock/unlock messages come only to a window that asks for them
                wtsapi = ctypes.WinDLL("wtsapi32")  # type: ignore[attr-defined]
                if wtsapi.WTSRegisterSessionNotification(ctypes.c_void_p(hwnd), 0):
                    self.sources.append("WM_WTSSESSION_CHANGE")
            except OSError as exc:
                log.warning("no session change notifications: %s", exc)
