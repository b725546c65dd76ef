"""PC fakes for the host board's services and host-side hardware (PC only).

* ``SimHostServices``: the ``host_services.HostServices`` interface on the virtual clock: a
  watchdog that "resets" (sets ``watchdog_fired``) when not fed within its timeout, 8 KiB of
  ``nvm`` and 256 bytes of ``sleep_memory`` (bytearrays), and a ``reset_reason``.
* ``PrechargeBusModel``: the DC bus behind a main contactor with precharge, as an RC circuit:
  through the precharge resistor the bus approaches the pack voltage with time constant
  ``tau_ms``; with the main contactor closed it equals the pack; open, it decays. ``stuck=True``
  models a shorted load or an open precharge resistor: the bus never rises.
"""

import math

from hil.clock import VirtualClock


class SimHostServices:
    def __init__(self, clock: VirtualClock, watchdog_timeout_s: int = 4, nvm_size: int = 8192) -> None:
        self.clock = clock
        self.watchdog_timeout_s = watchdog_timeout_s
        self.watchdog_running = False
        self.watchdog_fired = False
        self.feeds = 0
        self._last_feed_total = 0
        self.nvm = bytearray(b"\xff" * nvm_size)
        self.sleep_memory = bytearray(256)
        self.reset_reason = "POWER_ON"
        self.safemode_note = (0, 0)
        self.reloads = 0

    def _check(self) -> None:
        if self.watchdog_running and self.clock.total_ms - self._last_feed_total > self.watchdog_timeout_s * 1000:
            self.watchdog_fired = True

    def start_watchdog(self) -> None:
        self.watchdog_running = True
        self._last_feed_total = self.clock.total_ms

    def feed_watchdog(self) -> None:
        self._check()
        if self.watchdog_running:
            self.feeds += 1
            self._last_feed_total = self.clock.total_ms

    def stop_watchdog(self) -> None:
        self.watchdog_running = False

    def poll(self) -> bool:
        """Has the watchdog fired by now (call from the rig's loop)?"""
        self._check()
        return self.watchdog_fired

    def clear_safemode_note(self) -> None:
        from host_services import clear_safemode_note

        clear_safemode_note(self.sleep_memory)
        self.safemode_note = (0, 0)

    def reload(self) -> None:
        self.reloads += 1

    def hard_reset(self) -> None:
        self.reloads += 1


class PrechargeBusModel:
    def __init__(self, clock: VirtualClock, main_pin, precharge_pin, pack_mv_fn, tau_ms: int = 200,
                 active_high: bool = True) -> None:
        self.clock = clock
        self.main_pin = main_pin
        self.pre_pin = precharge_pin
        self.pack_mv_fn = pack_mv_fn
        self.tau_ms = tau_ms
        self.active_high = active_high
        self.stuck = False
        self._mv = 0.0
        self._t = clock.total_ms

    def _closed(self, pin) -> bool:
        return bool(pin.value) == self.active_high

    @property
    def bus_mv(self) -> int:
        now = self.clock.total_ms
        dt = now - self._t
        self._t = now
        pack = self.pack_mv_fn()
        if self._closed(self.main_pin) and not self.stuck:
            self._mv = float(pack)
        elif self._closed(self.pre_pin) and not self.stuck:
            self._mv = pack + (self._mv - pack) * math.exp(-dt / self.tau_ms)
        else:
            self._mv *= math.exp(-dt / (self.tau_ms * 20))
        return int(self._mv)
