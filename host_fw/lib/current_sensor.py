"""
`current_sensor`
================================================================================

The host's pack current and bus voltage from a TI INA228 (I2C, 20-bit shunt and bus ADC,
ALERT pin) through the Adafruit ``adafruit_ina228`` driver, and the hardware short-circuit
cut-off: the INA228's shunt over/under-voltage limits (SOVL/SUVL) are programmed from
``sc_trip_ma``, its ALERT pin (wired to the switch driver) cuts the pack in microseconds, and
the firmware reads the pin back as a trip.

Sign convention: **charge is positive**. The INA228 reads positive when current flows from IN+
to IN-; wire the shunt so charge current does that, or set ``invert=True``.

Why some registers are read here and not through the driver's properties: the driver returns
floats and allocates a ``bytes`` per read; the superloop needs integer mA and no allocation, so
the per-cycle reads use the driver's own ``i2c_device`` with preallocated buffers and integer
scaling. The driver's ``shunt_voltage_overlimit`` setter scales by 312.5 uV/LSB where the
datasheet says 5 uV/LSB (1.25 uV at ADCRANGE 1), so the limits are written as raw integers.
Configuration (reset, calibration, averaging, alert polarity and latch) goes through the driver.

**Hardware:** TI INA228 on ``busio.I2C`` (address 0x40-0x4F); ALERT on a ``digitalio`` input.
"""

from micropython import const

from protection import UNKNOWN

try:
    import typing  # noqa: F401
except ImportError:
    pass

_VSHUNT = const(0x04)
_VBUS = const(0x05)
_DIAG_ALRT = const(0x0B)
_SOVL = const(0x0C)
_SUVL = const(0x0D)
_SHNTOL = const(0x0040)
_SHNTUL = const(0x0020)
_CNVR = const(0x4000)
_ALATCH = const(0x8000)

# Full-scale shunt voltage of the two ADC ranges, in nV.
_RANGE0_NV = const(163840000)
_RANGE1_NV = const(40960000)
VBUS_MAX_MV = const(85000)  # the INA228's bus input range


def _round_div(a: int, b: int) -> int:
    return (a + b // 2) // b if a >= 0 else -((-a + b // 2) // b)


class CurrentSensor:
    """INA228 wrapper: ``read()`` every cycle, then ``current_ma``, ``bus_mv`` and ``sc_alert``.

    :param ina: an ``adafruit_ina228.INA228`` on the host's I2C bus.
    :param int shunt_uohm: shunt resistance in micro-ohm (75 mV at 300 A = 250 uOhm).
    :param int max_current_ma: largest expected current (sets the driver's calibration).
    :param int sc_trip_ma: hardware short-circuit limit (both directions).
    :param alert_pin: a ``digitalio.DigitalInOut`` input on the ALERT line (active low), or None
        to rely on the alert flags read over I2C.
    :param bool invert: the shunt is wired so that charge reads negative.
    :param int vbus_ratio: divider ratio in front of VBUS (1 = direct); 0 = VBUS not connected.
    """

    def __init__(self, ina, *, shunt_uohm: int, max_current_ma: int, sc_trip_ma: int, alert_pin=None,
                 invert: bool = False, vbus_ratio: int = 1) -> None:
        if shunt_uohm <= 0 or max_current_ma <= 0 or sc_trip_ma <= 0:
            raise ValueError("current sensor: shunt_uohm, max_current_ma and sc_trip_ma must be > 0")
        self.ina = ina
        self.shunt_uohm = shunt_uohm
        self.max_current_ma = max_current_ma
        self.sc_trip_ma = sc_trip_ma
        self.alert_pin = alert_pin
        self.invert = invert
        self.vbus_ratio = vbus_ratio
        self._ptr = bytearray(1)
        self._buf3 = bytearray(3)
        self._buf2 = bytearray(2)
        self._wbuf = bytearray(3)
        self.current_ma = UNKNOWN
        self.bus_mv = UNKNOWN
        self.ok = False
        self.errors = 0
        self._flag_alert = False
        top_nv = max(max_current_ma, sc_trip_ma) * shunt_uohm  # mA x uOhm = nV
        if top_nv > _RANGE0_NV:
            raise ValueError(
                "current sensor: %d mA on %d uOhm is %d uV, beyond the INA228's 163840 uV"
                % (max(max_current_ma, sc_trip_ma), shunt_uohm, top_nv // 1000)
            )
        self.adc_range = 1 if top_nv <= _RANGE1_NV else 0
        # Shunt-voltage LSB as a fraction of nV: 625/2 = 312.5 nV or 625/8 = 78.125 nV. Kept as 625/den so
        # raw (20 bits) x 625 stays a small int on the board (< 2^30); raw x 2500 would not near full scale.
        self._lsb_den = 8 if self.adc_range else 2
        # The limit registers' LSB in nV (5 uV or 1.25 uV).
        self._limit_lsb_nv = 1250 if self.adc_range else 5000
        self.configure()

    def configure(self) -> None:
        """(Re)program the sensor: calibration, range, alert limits, latched active-low ALERT."""
        ina = self.ina
        ina.adc_range = self.adc_range
        ina.set_calibration(self.shunt_uohm / 1000000, self.max_current_ma / 1000)
        # Active low, open drain, with a pull-up. A broken ALERT wire to the GPIO reads "no alert": the
        # switch driver's own cut-off is the protection; the GPIO only tells the firmware.
        ina.alert_polarity = 0
        ina.alert_latch = 1  # a microsecond spike is still seen by a 200 ms loop
        ina._alert_conv = False  # the driver's reset() routes conversion-ready to the pin; the pin is for limits only
        self.set_sc_trip_ma(self.sc_trip_ma)
        self.clear_alert()

    def set_sc_trip_ma(self, sc_trip_ma: int) -> None:
        """Reprogram the hardware short-circuit limit (after the ``sc_trip_ma`` setting changed).

        The ADC range stays as configured at start: a limit beyond it raises ``ValueError`` and the old
        limit stays in the chip (the caller shows the message)."""
        err = self.sc_trip_error(sc_trip_ma)
        if err:
            raise ValueError(err)
        self.sc_trip_ma = sc_trip_ma
        sovl = sc_trip_ma * self.shunt_uohm // self._limit_lsb_nv
        sovl = 0x7FFF if sovl > 0x7FFF else sovl
        self._write16(_SOVL, sovl)
        self._write16(_SUVL, (-sovl) & 0xFFFF)

    def sc_trip_error(self, sc_trip_ma: int) -> str:
        """Why ``set_sc_trip_ma`` would refuse this limit ("" when it fits the range chosen at start).
        Lets a settings interface refuse the value before it is stored."""
        if sc_trip_ma <= 0:
            return "current sensor: sc_trip_ma must be > 0"
        top_uv = (_RANGE1_NV if self.adc_range else _RANGE0_NV) // 1000
        if sc_trip_ma * self.shunt_uohm > top_uv * 1000:
            return ("current sensor: sc_trip_ma %d mA on %d uOhm is beyond the range set at start (%d uV); "
                    "a reboot chooses the range again" % (sc_trip_ma, self.shunt_uohm, top_uv))
        return ""

    def _write16(self, reg: int, value: int) -> None:
        b = self._wbuf
        b[0] = reg
        b[1] = (value >> 8) & 0xFF
        b[2] = value & 0xFF
        with self.ina.i2c_device as i2c:
            i2c.write(b)

    def _read(self, reg: int, buf) -> None:
        self._ptr[0] = reg
        with self.ina.i2c_device as i2c:
            i2c.write_then_readinto(self._ptr, buf)

    @property
    def limit_ma(self) -> int:
        """The short-circuit limit as programmed (after the register's rounding)."""
        self._read(_SOVL, self._buf2)
        raw = (self._buf2[0] << 8) | self._buf2[1]
        if raw & 0x8000:
            raw -= 0x10000
        return raw * self._limit_lsb_nv // self.shunt_uohm

    def read(self) -> bool:
        """Read current and bus voltage (and the alert flags when there is no ALERT pin: with a pin,
        DIAG_ALRT is left alone so the chip's latch holds the switch driver off).
        On an I2C error everything is ``UNKNOWN``
        and ``ok`` is False (the caller treats that as a sensor fault). Allocates nothing."""
        try:
            b = self._buf3
            self._read(_VSHUNT, b)
            raw = (b[0] << 16) | (b[1] << 8) | b[2]
            if raw & 0x800000:
                raw -= 0x1000000
            raw >>= 4  # 20-bit reading
            nv = raw * 625 // self._lsb_den if raw >= 0 else -((-raw * 625) // self._lsb_den)
            ma = _round_div(nv, self.shunt_uohm)
            self.current_ma = -ma if self.invert else ma
            if self.vbus_ratio > 0:
                self._read(_VBUS, b)
                vraw = ((b[0] << 16) | (b[1] << 8) | b[2]) >> 4
                pin_mv = vraw * 25 // 128  # 195.3125 uV/LSB
                self.bus_mv = UNKNOWN if pin_mv >= VBUS_MAX_MV else pin_mv * self.vbus_ratio
            else:
                self.bus_mv = UNKNOWN
            if self.alert_pin is None:
                # Without the pin, poll the flags and keep them latched here (reading clears the chip's latch).
                self._read(_DIAG_ALRT, self._buf2)
                if self._buf2[1] & (_SHNTOL | _SHNTUL):
                    self._flag_alert = True
            self.ok = True
        except OSError:
            self.errors += 1
            self.ok = False
            self.current_ma = UNKNOWN
            self.bus_mv = UNKNOWN
        return self.ok

    @property
    def sc_alert(self) -> bool:
        """The hardware short-circuit cut-off has fired: the ALERT pin is low (or, without a pin,
        the last read saw a shunt limit flag). Latched in the sensor until ``clear_alert()``."""
        if self.alert_pin is not None:
            return not self.alert_pin.value
        return self._flag_alert

    def clear_alert(self) -> None:
        """Release the sensor's latch (reading DIAG_ALRT clears it; it sets again if still beyond)."""
        try:
            self._read(_DIAG_ALRT, self._buf2)
            self._flag_alert = bool(self._buf2[1] & (_SHNTOL | _SHNTUL))
        except OSError:
            self.errors += 1


class AbsentCurrentSensor:
    """Stands in when the INA228 did not answer at start: every read fails, so the host treats the
    current as unknown and holds both paths open (a sensor fault), instead of running blind."""

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        self.current_ma = UNKNOWN
        self.bus_mv = UNKNOWN
        self.ok = False
        self.errors = 0
        self.sc_alert = False

    def read(self) -> bool:
        self.errors += 1
        return False

    def clear_alert(self) -> None:
        pass
