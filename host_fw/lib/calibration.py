"""
`calibration`
================================================================================

Manual current calibration of the host's INA228 reading (DESIGN.md §1 "manual current calibration", §7):
a zero offset measured at no load and a gain from one known current, stored with the settings as
``cal_offset_ma`` and ``cal_gain_ppm`` (1 000 000 = 1.0). Pure, integers only.

    corrected_ma = (raw_ma - offset_ma) * gain_ppm / 1 000 000      (computed without long ints)

API::

    apply(raw_ma, offset_ma, gain_ppm) -> int
    offset_from(raw_sum_ma, n) -> int                          # mean of n no-load readings
    gain_from(raw_ma, offset_ma, true_ma) -> int               # raises ValueError with the reason
    cal = Calibrator(); cal.start_zero(n) / cal.start_gain(true_ma, n)
    cal.feed(raw_ma, offset_ma) -> bool                        # True when done: cal.name, cal.value to set
"""

from micropython import const

GAIN_ONE_PPM = const(1000000)
# What a calibration may correct. The INA228's own offset is a few uV (a few mA on a 250 uOhm shunt) and its
# gain error 0.1 %; shunts are 0.5-5 %. A "zero" beyond 2 A was taken with a load connected, and a gain beyond
# +-10 % means a wrong known current or a wrong SHUNT_UOHM: storing either would shift the over-current trips
# by that much (a zero under a 50 A load makes a 150 A discharge read 100 A), so both are refused.
GAIN_MIN_PPM = const(900000)
GAIN_MAX_PPM = const(1100000)
OFFSET_MAX_MA = const(2000)
MIN_KNOWN_MA = const(1000)  # a gain from less than 1 A is mostly noise


def apply(raw_ma: int, offset_ma: int, gain_ppm: int) -> int:
    """Corrected current in mA; splits the product so every term stays a small int on the board."""
    r = raw_ma - offset_ma
    d = gain_ppm - GAIN_ONE_PPM
    if d == 0:
        return r
    neg = r < 0
    if neg:
        r = -r
    hi = r // 1000
    lo = r - hi * 1000
    # r * d / 1e6 = (hi * d + lo * d / 1e3) / 1e3: every term stays below 2^30 for |r| <= 2 000 000 mA
    # and |d| <= 500 000 ppm, so no long int is made on the board (rounds down, within 1 mA)
    out = r + (hi * d + (lo * d) // 1000) // 1000
    return -out if neg else out


def offset_from(raw_sum_ma: int, n: int) -> int:
    if n <= 0:
        raise ValueError("calibration: no readings")
    off = raw_sum_ma // n if raw_sum_ma >= 0 else -((-raw_sum_ma) // n)
    if off < -OFFSET_MAX_MA or off > OFFSET_MAX_MA:
        raise ValueError("calibration: zero offset %d mA too large (is a load connected?)" % off)
    return off


def gain_from(raw_ma: int, offset_ma: int, true_ma: int) -> int:
    """Gain in ppm that makes ``raw_ma`` read ``true_ma``; raises ValueError naming the problem."""
    if true_ma < MIN_KNOWN_MA and true_ma > -MIN_KNOWN_MA:
        raise ValueError("calibration: known current must be at least %d mA" % MIN_KNOWN_MA)
    r = raw_ma - offset_ma
    if r == 0 or (r > 0) != (true_ma > 0):
        raise ValueError("calibration: reading %d mA has the wrong sign or is zero (check the current)" % r)
    gain = true_ma * GAIN_ONE_PPM // r  # once, at calibration time: a long int here is fine
    if gain < GAIN_MIN_PPM or gain > GAIN_MAX_PPM:
        raise ValueError(
            "calibration: gain %d ppm outside %d..%d (check the known current)" % (gain, GAIN_MIN_PPM, GAIN_MAX_PPM)
        )
    return gain


class Calibrator:
    """Averages ``n`` raw readings (one per cycle) for a zero or gain calibration."""

    IDLE = 0
    ZERO = 1
    GAIN = 2

    def __init__(self) -> None:
        self.mode = self.IDLE
        self.name = ""
        self.value = 0
        self.error = ""
        self._sum = 0
        self._n = 0
        self._want = 0
        self._true_ma = 0

    def start_zero(self, n: int = 10) -> None:
        self._start(self.ZERO, n)

    def start_gain(self, true_ma: int, n: int = 10) -> None:
        if true_ma < MIN_KNOWN_MA and true_ma > -MIN_KNOWN_MA:
            raise ValueError("calibration: known current must be at least %d mA" % MIN_KNOWN_MA)
        self._true_ma = true_ma
        self._start(self.GAIN, n)

    def _start(self, mode: int, n: int) -> None:
        if n < 1:
            raise ValueError("calibration: n >= 1")
        self.mode = mode
        self._want = n
        self._sum = 0
        self._n = 0
        self.error = ""

    @property
    def busy(self) -> bool:
        return self.mode != self.IDLE

    def feed(self, raw_ma: int, offset_ma: int = 0) -> bool:
        """Add one raw reading; True when the result is ready in ``name``/``value`` (or ``error``)."""
        if self.mode == self.IDLE:
            return False
        self._sum += raw_ma
        self._n += 1
        if self._n < self._want:
            return False
        mode = self.mode
        self.mode = self.IDLE
        self.error = ""
        try:
            if mode == self.ZERO:
                self.name = "cal_offset_ma"
                self.value = offset_from(self._sum, self._n)
            else:
                self.name = "cal_gain_ppm"
                s = self._sum
                mean = s // self._n if s >= 0 else -((-s) // self._n)
                self.value = gain_from(mean, offset_ma, self._true_ma)
        except ValueError as e:
            self.name = ""
            self.error = str(e)
        return True
