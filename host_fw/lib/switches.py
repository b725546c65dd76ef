"""
`switches`
================================================================================

The pack's power path, over ``digitalio`` outputs (tests see every change through the pins):

* ``MosfetSwitches``: separate charge and discharge MOSFETs (back to back), each switched on
  its own; the hardware short-circuit alert also turns the gate driver off by itself.
* ``ContactorSwitches``: a main contactor with a precharge relay. Closing: close precharge,
  wait until the bus is within ``margin_mv`` of the pack, close the main, keep precharge
  closed for ``overlap_ms``, open it. An attempt that does not reach the margin within
  ``precharge_ms`` opens everything; after ``retries`` more attempts (with ``pause_ms`` for the
  precharge resistor to cool between them) the precharge fault latches until ``reset()``.
  Optional ``chg_en``/``dsg_en`` outputs tell the charger and the load which direction is allowed.

Both have ``update(now_ms, charge_on, discharge_on, pack_mv, bus_mv)``, ``open_all()``,
``charge_closed``, ``discharge_closed``, ``fault`` and ``state_text``. ``update`` allocates nothing.

**Hardware:** gate drivers / relay drivers on GPIO outputs (``active_high`` selects the level
that closes).
"""

from adafruit_ticks import ticks_diff
from micropython import const

from protection import UNKNOWN

try:
    import typing  # noqa: F401
except ImportError:
    pass

OPEN = const(0)
PRECHARGING = const(1)
CLOSING = const(2)
CLOSED = const(3)
PAUSE = const(4)
PRECHARGE_FAULT = const(5)
STATE_TEXT = ("open", "precharging", "closing", "closed", "precharge retry pause", "precharge fault")


def _output(pin, active_high: bool):
    pin.switch_to_output(value=not active_high)
    return pin


class MosfetSwitches:
    """Charge FET and discharge FET, each on its own pin."""

    kind = "mosfet"

    def __init__(self, chg_pin, dsg_pin, *, active_high: bool = True) -> None:
        self._on = active_high
        self.chg_pin = _output(chg_pin, active_high)
        self.dsg_pin = _output(dsg_pin, active_high)
        self.charge_closed = False
        self.discharge_closed = False
        self.fault = False
        self.state = OPEN

    def update(self, now_ms: int, charge_on: bool, discharge_on: bool, pack_mv: int = UNKNOWN,
               bus_mv: int = UNKNOWN) -> None:
        if charge_on != self.charge_closed:
            self.chg_pin.value = self._on if charge_on else not self._on
            self.charge_closed = charge_on
        if discharge_on != self.discharge_closed:
            self.dsg_pin.value = self._on if discharge_on else not self._on
            self.discharge_closed = discharge_on
        self.state = CLOSED if (self.charge_closed or self.discharge_closed) else OPEN

    def open_all(self) -> None:
        self.chg_pin.value = not self._on
        self.dsg_pin.value = not self._on
        self.charge_closed = False
        self.discharge_closed = False
        self.state = OPEN

    def reset(self) -> None:
        pass

    @property
    def connected(self) -> bool:
        """The load side is connected to the pack (for the bus-voltage plausibility check)."""
        return self.charge_closed and self.discharge_closed

    @property
    def state_text(self) -> str:
        return STATE_TEXT[self.state]


class ContactorSwitches:
    """Main contactor + precharge relay (+ optional charge/discharge enable signals)."""

    kind = "contactor"

    def __init__(self, main_pin, precharge_pin, *, margin_mv: int, precharge_ms: int, retries: int,
                 pause_ms: int = 5000, overlap_ms: int = 100, chg_en_pin=None, dsg_en_pin=None,
                 active_high: bool = True) -> None:
        if margin_mv <= 0 or precharge_ms <= 0 or retries < 0 or pause_ms < 0 or overlap_ms < 0:
            raise ValueError("contactor: margin_mv and precharge_ms must be > 0, retries/pause/overlap >= 0")
        self._on = active_high
        self.main_pin = _output(main_pin, active_high)
        self.pre_pin = _output(precharge_pin, active_high)
        self.chg_en_pin = _output(chg_en_pin, active_high) if chg_en_pin is not None else None
        self.dsg_en_pin = _output(dsg_en_pin, active_high) if dsg_en_pin is not None else None
        self.margin_mv = margin_mv
        self.precharge_ms = precharge_ms
        self.retries = retries
        self.pause_ms = pause_ms
        self.overlap_ms = overlap_ms
        self.state = OPEN
        self.attempts = 0
        self._since = 0
        self.charge_closed = False
        self.discharge_closed = False
        self.last_gap_mv = UNKNOWN

    @property
    def fault(self) -> bool:
        return self.state == PRECHARGE_FAULT

    @property
    def main_closed(self) -> bool:
        return self.state == CLOSED or self.state == CLOSING

    @property
    def connected(self) -> bool:
        return self.main_closed

    @property
    def state_text(self) -> str:
        return STATE_TEXT[self.state]

    def _set(self, main: bool, pre: bool) -> None:
        on = self._on
        if self.main_pin.value != (on if main else not on):
            self.main_pin.value = on if main else not on
        if self.pre_pin.value != (on if pre else not on):
            self.pre_pin.value = on if pre else not on

    def _enables(self, charge_on: bool, discharge_on: bool) -> None:
        closed = self.state == CLOSED
        self.charge_closed = closed and charge_on
        self.discharge_closed = closed and discharge_on
        on = self._on
        if self.chg_en_pin is not None:
            self.chg_en_pin.value = on if self.charge_closed else not on
        if self.dsg_en_pin is not None:
            self.dsg_en_pin.value = on if self.discharge_closed else not on

    def open_all(self) -> None:
        self._set(False, False)
        if self.state != PRECHARGE_FAULT:
            self.state = OPEN
        self._enables(False, False)

    def reset(self) -> None:
        """User reset: clear the precharge fault so the next request tries again."""
        if self.state == PRECHARGE_FAULT:
            self.state = OPEN
            self.attempts = 0

    def update(self, now_ms: int, charge_on: bool, discharge_on: bool, pack_mv: int = UNKNOWN,
               bus_mv: int = UNKNOWN) -> None:
        want = charge_on or discharge_on
        st = self.state
        if st == PRECHARGE_FAULT:
            self._set(False, False)
        elif not want:
            self._set(False, False)
            self.state = OPEN
            self.attempts = 0
        elif st == OPEN:
            if pack_mv != UNKNOWN:
                self._start(now_ms)
        elif st == PRECHARGING:
            gap = UNKNOWN
            if pack_mv != UNKNOWN and bus_mv != UNKNOWN:
                gap = pack_mv - bus_mv if pack_mv > bus_mv else bus_mv - pack_mv
            self.last_gap_mv = gap
            if gap != UNKNOWN and gap <= self.margin_mv:
                self._set(True, True)
                self.state = CLOSING
                self._since = now_ms
            elif ticks_diff(now_ms, self._since) >= self.precharge_ms:
                self._set(False, False)
                self.attempts += 1
                self._since = now_ms
                self.state = PRECHARGE_FAULT if self.attempts > self.retries else PAUSE
        elif st == CLOSING:
            if ticks_diff(now_ms, self._since) >= self.overlap_ms:
                self._set(True, False)
                self.state = CLOSED
                self.attempts = 0
        elif st == PAUSE:
            if ticks_diff(now_ms, self._since) >= self.pause_ms and pack_mv != UNKNOWN:
                self._start(now_ms)
        self._enables(charge_on, discharge_on)

    def _start(self, now_ms: int) -> None:
        self._set(False, True)
        self.state = PRECHARGING
        self._since = now_ms
