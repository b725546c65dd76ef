"""One virtual clock for the whole rig: integer milliseconds, wrapping like ``adafruit_ticks`` (2^29)."""

TICKS_PERIOD = 1 << 29


class VirtualClock:
    """Simulated time. ``ms`` is the wrapping tick the firmware sees; ``total_ms`` never wraps.

    Start it near the wrap (``start_ms=TICKS_PERIOD - 5000``) to prove the firmware is wrap-safe.
    """

    def __init__(self, start_ms: int = 0) -> None:
        self.total_ms = 0
        self._start = start_ms % TICKS_PERIOD
        self._us = 0  # sub-millisecond remainder for byte timing

    @property
    def ms(self) -> int:
        return (self._start + self.total_ms) % TICKS_PERIOD

    @property
    def total_us(self) -> int:
        return self.total_ms * 1000 + self._us

    def advance(self, ms: int) -> None:
        if ms < 0:
            raise ValueError("time runs forward")
        self.total_ms += ms

    def advance_us(self, us: int) -> None:
        if us < 0:
            raise ValueError("time runs forward")
        total = self._us + us
        self.total_ms += total // 1000
        self._us = total % 1000

    def ticks_ms(self) -> int:
        """Drop-in for ``supervisor.ticks_ms`` / ``adafruit_ticks.ticks_ms``."""
        return self.ms
