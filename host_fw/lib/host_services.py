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

# The note safemode.py leaves in the last bytes of alarm.sleep_memory (the SOC copy lives at its
# start): magic "SM", reason code, count of safe-mode entries since the last clean start.
SAFEMODE_MAGIC0 = 0x53  # "S"
SAFEMODE_MAGIC1 = 0x4D  # "M"
SAFEMODE_NOTE_AT = 252
SAFEMODE_NOTE_LEN = 4


def read_safemode_note(mem) -> tuple:
    """``(reason_code, count)`` left by ``safemode.py`` in ``mem``, or ``(0, 0)``.

    The note stays (so ``safemode.py`` can count repeated entries) until ``clear_safemode_note``,
    which the host app calls after a healthy minute."""
    at = SAFEMODE_NOTE_AT
    if mem is None or len(mem) < at + SAFEMODE_NOTE_LEN:
        return (0, 0)
    if mem[at] != SAFEMODE_MAGIC0 or mem[at + 1] != SAFEMODE_MAGIC1:
        return (0, 0)
    return (mem[at + 2], mem[at + 3])


def clear_safemode_note(mem) -> None:
    at = SAFEMODE_NOTE_AT
    if mem is not None and len(mem) >= at + SAFEMODE_NOTE_LEN:
        for i in range(SAFEMODE_NOTE_LEN):
            mem[at + i] = 0


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

    def clear_safemode_note(self) -> None:
        clear_safemode_note(self.sleep_memory)

    def reload(self) -> None:
        import supervisor  # noqa: PLC0415

        supervisor.reload()

    def hard_reset(self) -> None:
        self._mc.reset()
