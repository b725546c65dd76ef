"""HostServices over fake CircuitPython modules: watchdog in RESET mode, fed only when asked; safe-mode note."""

import sys
import types

from host_services import SAFEMODE_NOTE_AT, HostServices


class FakeWatchdog:
    def __init__(self):
        self.timeout = None
        self.mode = None
        self.feeds = 0
        self.deinits = 0

    def feed(self):
        self.feeds += 1

    def deinit(self):
        self.deinits += 1


def install(monkeypatch, mem):
    wd = FakeWatchdog()
    mc = types.SimpleNamespace(watchdog=wd, nvm=bytearray(8192), resets=[],
                               cpu=types.SimpleNamespace(reset_reason="microcontroller.ResetReason.BROWNOUT"))
    mc.reset = lambda: mc.resets.append(1)
    monkeypatch.setitem(sys.modules, "microcontroller", mc)
    mode = types.SimpleNamespace(RESET="RESET")
    monkeypatch.setitem(sys.modules, "watchdog", types.SimpleNamespace(WatchDogMode=mode))
    monkeypatch.setitem(sys.modules, "alarm", types.SimpleNamespace(sleep_memory=mem))
    return wd, mc


def test_watchdog_reset_mode_and_feeding(monkeypatch):
    wd, mc = install(monkeypatch, bytearray(256))
    s = HostServices(watchdog_timeout_s=4)
    s.feed_watchdog()
    assert wd.feeds == 0  # not started: nothing to feed
    s.start_watchdog()
    assert wd.timeout == 4 and wd.mode == "RESET" and s.watchdog_running
    s.feed_watchdog()
    assert wd.feeds == 2
    s.stop_watchdog()
    assert wd.deinits == 1 and not s.watchdog_running
    assert s.reset_reason == "BROWNOUT" and s.nvm is mc.nvm
    s.hard_reset()
    assert mc.resets == [1]


def test_safemode_note_read_at_start_and_cleared_on_request(monkeypatch):
    mem = bytearray(256)
    mem[SAFEMODE_NOTE_AT:SAFEMODE_NOTE_AT + 4] = bytes((0x53, 0x4D, 1, 3))
    install(monkeypatch, mem)
    s = HostServices()
    assert s.safemode_note == (1, 3)
    s.clear_safemode_note()
    assert bytes(mem[SAFEMODE_NOTE_AT:]) == bytes(4)
