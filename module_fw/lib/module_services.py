"""
`module_services`
================================================================================

Board services of the module board behind one small object, so ``module_app`` never imports ``alarm`` or
``microcontroller`` itself and runs on a PC against ``hil.module_services_sim.SimModuleServices``.

* ``sleep_memory``: ``alarm.sleep_memory`` (256 bytes; survives deep sleep and resets, not power loss).
* ``woke_from_pin``: this run of ``code.py`` started because the UP receive line went low during deep sleep.
* ``deep_sleep()``: release the pins, then deep sleep until a start bit pulls the UP receive line low
  (``alarm.pin.PinAlarm(pin, value=False)``; the idle UART line is high). On the RP2040 waking restarts
  ``code.py`` from the top, so this never returns.
* ``feed_watchdog()``: feed ``microcontroller.watchdog`` when it was enabled here.
"""

import alarm
import microcontroller

try:
    import typing  # noqa: F401
except ImportError:
    pass


class ModuleServices:
    """:param up_rx_pin: the ``board`` pin of the UP port's receive line (the wake source)
    :param release: objects to ``deinit()`` before sleeping (the UART holding ``up_rx_pin`` must be among them)
    :param int watchdog_s: enable the board watchdog (RESET mode) with this timeout; 0 = leave it off
    """

    def __init__(self, up_rx_pin, *, release=(), watchdog_s: int = 0) -> None:
        self._pin = up_rx_pin
        self._release = release
        self._dog = None
        if watchdog_s:
            from watchdog import WatchDogMode

            self._dog = microcontroller.watchdog
            self._dog.timeout = watchdog_s
            self._dog.mode = WatchDogMode.RESET

    @property
    def sleep_memory(self):
        return alarm.sleep_memory

    @property
    def woke_from_pin(self) -> bool:
        return isinstance(alarm.wake_alarm, alarm.pin.PinAlarm)

    def feed_watchdog(self) -> None:
        if self._dog is not None:
            self._dog.feed()

    def deep_sleep(self) -> None:
        for obj in self._release:
            obj.deinit()
        if self._dog is not None:
            try:
                self._dog.deinit()
            except Exception:  # noqa: BLE001 - a port that cannot stop it resets us: code.py restarts, same outcome
                pass
        wake = alarm.pin.PinAlarm(self._pin, value=False)
        alarm.exit_and_deep_sleep_until_alarms(wake)
