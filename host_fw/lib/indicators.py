"""
`indicators`
================================================================================

The running LED (a blink pattern per host state) and the alarm buzzer (a pattern per severity,
mutable), over ``digitalio`` outputs. A pattern is a tuple of durations in ms, alternately on
and off, starting with on; ``()`` means off. ``step(now_ms)`` allocates nothing.

**Hardware:** an LED and an active (self-oscillating) buzzer on GPIO outputs.
"""

from adafruit_ticks import ticks_diff
from micropython import const

try:
    import typing  # noqa: F401
except ImportError:
    pass

# Alarm severities.
SEV_NONE = const(0)
SEV_WARNING = const(1)  # a warning level is crossed
SEV_TRIP = const(2)  # a protection trip holds a path open
SEV_CRITICAL = const(3)  # short circuit, both paths open, precharge fault

OFF = ()
# LED patterns per host state (see host_app.STATE_NAMES for the ids).
LED_PATTERNS = (
    (50, 50),  # START: flicker
    (100, 100),  # WAKE/ENUMERATE: fast blink
    (100, 100, 100, 700),  # CHECK: double flash
    (100, 1900),  # STANDBY: short blink every 2 s
    (1000, 1000),  # RUNNING: slow blink, the original's "running LED"
    (250, 250),  # FAULT: fast steady blink
    OFF,  # SLEEP
)
BUZZER_PATTERNS = (
    OFF,  # none
    (100, 9900),  # warning: a chirp every 10 s
    (300, 300, 300, 1100),  # trip: two beeps every 2 s
    (500, 500),  # critical: continuous beeping
)


class Blinker:
    """Plays a pattern on one output pin."""

    def __init__(self, pin, active_high: bool = True) -> None:
        self.pin = pin
        self._on = active_high
        pin.switch_to_output(value=not active_high)
        self.pattern = OFF
        self._period = 0
        self._start = 0
        self.lit = False

    def play(self, now_ms: int, pattern) -> None:
        """Switch to ``pattern`` (restarts it only when it changes)."""
        if pattern is self.pattern:
            return
        self.pattern = pattern
        self._start = now_ms
        p = 0
        for d in pattern:
            p += d
        self._period = p

    def step(self, now_ms: int) -> None:
        lit = False
        if self._period:
            t = ticks_diff(now_ms, self._start) % self._period
            on = True
            for d in self.pattern:
                if t < d:
                    lit = on
                    break
                t -= d
                on = not on
        if lit != self.lit:
            self.lit = lit
            self.pin.value = self._on if lit else not self._on


class Indicators:
    """LED per state, buzzer per severity. ``mute()`` silences the present alarm; a worse one sounds again."""

    def __init__(self, led_pin=None, buzzer_pin=None, *, active_high: bool = True) -> None:
        self.led = Blinker(led_pin, active_high) if led_pin is not None else None
        self.buzzer = Blinker(buzzer_pin, active_high) if buzzer_pin is not None else None
        self.severity = SEV_NONE
        self.muted_at = SEV_NONE  # severity that was muted (0 = not muted)

    def mute(self) -> None:
        self.muted_at = self.severity

    @property
    def muted(self) -> bool:
        return self.muted_at != SEV_NONE and self.severity <= self.muted_at

    def step(self, now_ms: int, state: int, severity: int) -> None:
        if severity == SEV_NONE:
            self.muted_at = SEV_NONE  # the alarm is over: the next one sounds
        self.severity = severity
        if self.led is not None:
            self.led.play(now_ms, LED_PATTERNS[state])
            self.led.step(now_ms)
        if self.buzzer is not None:
            self.buzzer.play(now_ms, OFF if self.muted else BUZZER_PATTERNS[severity])
            self.buzzer.step(now_ms)
