"""Simulated ``digitalio.DigitalInOut`` pins: tests and the rig see every change with its time."""

try:
    from digitalio import Direction, Pull
except ImportError:  # pragma: no cover - Blinka is always there on the PC
    Direction = Pull = None

from hil.sim_deinit import SimDeinit


class SimPin(SimDeinit):
    """Duck-types ``digitalio.DigitalInOut`` (value, direction, pull, switch_to_output/input, deinit).

    ``history`` records ``(clock.total_ms, value)`` for every output change when a clock is given.
    An input's level comes from ``level`` (settable by the rig) or from ``source()`` when given.
    """

    def __init__(self, name: str = "pin", clock=None, level: bool = True, source=None) -> None:
        self.name = name
        self.clock = clock
        self.level = level
        self.source = source
        self.direction = Direction.INPUT if Direction else "input"
        self.pull = None
        self._out = False
        self.history = []
        self.deinited = False

    def switch_to_output(self, value: bool = False, drive_mode=None) -> None:
        self.direction = Direction.OUTPUT if Direction else "output"
        self._set(bool(value))

    def switch_to_input(self, pull=None) -> None:
        self.direction = Direction.INPUT if Direction else "input"
        self.pull = pull

    @property
    def is_output(self) -> bool:
        return self.direction == (Direction.OUTPUT if Direction else "output")

    @property
    def value(self) -> bool:
        if self.is_output:
            return self._out
        if self.source is not None:
            return bool(self.source())
        return bool(self.level)

    @value.setter
    def value(self, v) -> None:
        if not self.is_output:
            raise AttributeError("Cannot set value when direction is input.")
        self._set(bool(v))

    def _set(self, v: bool) -> None:
        if v != self._out or not self.history:
            self.history.append((self.clock.total_ms if self.clock else None, v))
        self._out = v
