"""
`host_services`
================================================================================

The board services the host app needs, behind one small object so the app never imports them
and the PC rig can pass a fake (``hil.host_services_sim.SimHostServices``):

* the watchdog (``microcontroller.watchdog``, RESET mode), fed only by a healthy cycle;
* why the board last reset (``microcontroller.cpu.reset_reason``, ``supervisor.runtime.safe_mode_reason``)
  and the note ``safemode.py`` leaves in ``alarm.sleep_memory``;
* ``microcontroller.nvm`` and ``alarm.sleep_memory`` for the settings store and SOC;
* ``supervisor.reload()`` and a hard reset.

**Hardware:** CircuitPython's ``microcontroller``, ``watchdog``, ``alarm``, ``supervisor``.
"""

try:
    import typing  # noqa: F401
except ImportError:
    pass

# sleep_memory layout shared with safemode.py: bytes 0..1 magic, 2 reason code, 3 count.
SAFEMODE_MAGIC0 = 0x53  # "S"
SAFEMODE_MAGIC1 = 0x4D  # "M"
SAFEMODE_NOTE_AT = 0  # first byte of the note; the SOC engineer's data must start at 4 or later
SAFEMODE_NOTE_LEN = 4


def read_safemode_note(mem) -> tuple:
    """``(reason_code, count)`` left by ``safemode.py`` in ``mem``, or ``(0, 0)``; clears it."""
    if mem is None or len(mem) < SAFEMODE_NOTE_LEN:
        return (0, 0)
    if mem[0] != SAFEMODE_MAGIC0 or mem[1] != SAFEMODE_MAGIC1:
        return (0, 0)
    note = (mem[2], mem[3])
    mem[0] = 0
    mem[1] = 0
    return note


class HostServices:
    """The real board services (CircuitPython). Imports happen here, once, at construction."""

    def __init__(self, watchdog_timeout_s: int = 4) -> None:
        import microcontroller  # noqa: PLC0415 - only on the board

        self._mc = microcontroller
        self.watchdog_timeout_s = watchdog_timeout_s
        self.watchdog_running = False
        try:
            import alarm  # noqa: PLC0415

            self.sleep_memory = alarm.sleep_memory
        except (ImportError, AttributeError):
            self.sleep_memory = None
        self.nvm = getattr(microcontroller, "nvm", None)
        self.safemode_note = read_safemode_note(self.sleep_memory)

    @property
    def reset_reason(self) -> str:
        try:
            return str(self._mc.cpu.reset_reason).split(".")[-1]
        except (AttributeError, NotImplementedError):
            return "UNKNOWN"

    def start_watchdog(self) -> None:
        from watchdog import WatchDogMode  # noqa: PLC0415

        wd = self._mc.watchdog
        wd.timeout = self.watchdog_timeout_s
        wd.mode = WatchDogMode.RESET
        wd.feed()
        self.watchdog_running = True

    def feed_watchdog(self) -> None:
        if self.watchdog_running:
            self._mc.watchdog.feed()

    def stop_watchdog(self) -> None:
        """Only before a deliberate deep sleep (the watchdog would reset a sleeping board)."""
        if self.watchdog_running:
            self._mc.watchdog.deinit()
            self.watchdog_running = False

    def reload(self) -> None:
        import supervisor  # noqa: PLC0415

        supervisor.reload()

    def hard_reset(self) -> None:
        self._mc.reset()
