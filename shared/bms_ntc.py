"""
`bms_ntc`
================================================================================

NTC thermistor on an ADC input, in integers: a 10 kOhm NTC to ground with a pull-up to the
reference (on the module board: GPIO1/GPIO2 of the LTC6811, pulled up to its 3 V VREF2;
the host reuses it for its MOSFET sensor).

The conversion is ratiometric (GPIO voltage / reference voltage), so the reference's own
tolerance cancels. A table of the divider ratio every 5 C from -40 to +125 C is built once
from the beta model (floats only at construction); each reading is a table look-up with
linear interpolation, giving 0.1 C integers (``temp_dc``). An open sensor (the input sits at
the reference), a shorted one, a reading outside the table or a missing reference give
``TEMP_ABSENT``: an absent sensor is reported as absent, never as a temperature.
"""

import math
from array import array

from bms_packet import TEMP_ABSENT
from micropython import const

_SCALE = const(100000)  # divider ratio units
_T0_DC = const(-400)
_STEP_DC = const(50)
_POINTS = const(34)  # -40.0 ... +125.0 C
_VREF_MIN_100UV = const(25000)  # 2.5 V: below this the reference is not up
_VREF_MAX_100UV = const(35000)
_UNKNOWN = const(0xFFFF)  # an ADC entry that held no conversion (LTC6811 cleared register)


class NTC:
    """A thermistor divider: ``temp_dc(adc, ref)`` converts one reading.

    :param int beta: B constant of the NTC (B25/85), e.g. 3435
    :param int r25_ohm: NTC resistance at 25 C
    :param int pullup_ohm: pull-up from the input to the reference
    """

    def __init__(self, beta: int = 3435, r25_ohm: int = 10000, pullup_ohm: int = 10000) -> None:
        self.beta = beta
        self._ratio = array("l", range(_POINTS))
        for i in range(_POINTS):
            t_k = (_T0_DC + _STEP_DC * i) / 10 + 273.15
            r = r25_ohm * math.exp(beta * (1 / t_k - 1 / 298.15))
            self._ratio[i] = int(_SCALE * r / (r + pullup_ohm) + 0.5)

    def ratio_at(self, temp_dc: int) -> int:
        """Divider ratio (1e-5 units) the table gives at ``temp_dc`` (for tests and the inverse)."""
        i = (temp_dc - _T0_DC) // _STEP_DC
        i = max(0, min(_POINTS - 2, i))
        t0 = _T0_DC + _STEP_DC * i
        a = self._ratio[i]
        b = self._ratio[i + 1]
        return a - (a - b) * (temp_dc - t0) // _STEP_DC

    def temp_dc(self, adc_100uv: int, ref_100uv: int) -> int:
        """Temperature in 0.1 C of a reading ``adc_100uv`` against reference ``ref_100uv``; else ``TEMP_ABSENT``."""
        if adc_100uv == _UNKNOWN or ref_100uv == _UNKNOWN:
            return TEMP_ABSENT
        if not _VREF_MIN_100UV <= ref_100uv <= _VREF_MAX_100UV:
            return TEMP_ABSENT
        ratio = adc_100uv * _SCALE // ref_100uv
        tab = self._ratio
        if ratio > tab[0] or ratio < tab[_POINTS - 1]:
            return TEMP_ABSENT  # open (reads the reference), shorted, or outside -40..125 C
        # Ratios fall with temperature: find the segment, then interpolate.
        lo = 0
        hi = _POINTS - 1
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if tab[mid] >= ratio:
                lo = mid
            else:
                hi = mid
        a = tab[lo]
        b = tab[hi]
        num = (a - ratio) * _STEP_DC * 2 // (a - b)
        return _T0_DC + _STEP_DC * lo + (num + 1) // 2
