"""
`ltc6811`
================================================================================

CircuitPython driver for the Analog Devices (Linear Technology) LTC6811-1 multicell battery
monitor: 12 cell inputs (0-5 V, 100 uV per LSB), 5 GPIO ADC inputs, a 2 s watchdog and a
discharge switch (DCC) per cell, on SPI mode 3 at up to 1 MHz.

Every command is 2 bytes + PEC (CRC-15); every 6-byte register group carries its own PEC.
Reads are PEC-checked and retried a bounded number of times, then raise ``PECError``.
Conversions are started here and read later (``start_*`` / ``read_*_into``): the caller's
superloop waits ``conversion_ms(...)`` without blocking. Registers are cleared (0xFFFF) before
each conversion, so a conversion that never ran reads as unknown, never as 6.5535 V.

* Hardware: LTC6811-1 (single device, SPI, not the daisy-chained -2 addressing).
* Needs: ``adafruit_bus_device``.
"""

from array import array
from micropython import const

try:
    import typing  # noqa: F401
    from busio import SPI  # noqa: F401
    from digitalio import DigitalInOut  # noqa: F401
except ImportError:
    pass

# Commands (11-bit codes, datasheet table 38).
_WRCFGA = const(0x001)
_RDCFGA = const(0x002)
_RDCVA = const(0x004)
_RDCVB = const(0x006)
_RDCVC = const(0x008)
_RDCVD = const(0x00A)
_RDAUXA = const(0x00C)
_RDAUXB = const(0x00E)
_RDSTATA = const(0x010)
_RDSTATB = const(0x012)
_ADCV = const(0x260)
_ADOW = const(0x228)
_ADAX = const(0x460)
_ADSTAT = const(0x468)
_CLRCELL = const(0x711)
_CLRAUX = const(0x712)
_CLRSTAT = const(0x713)
_PLADC = const(0x714)
_DIAGN = const(0x715)

MODE_FAST = const(1)  # 27 kHz
MODE_NORMAL = const(2)  # 7 kHz
MODE_FILTERED = const(3)  # 26 Hz

CELL_UNKNOWN = const(0xFFFF)  # a cleared register: no conversion landed there
CELLS = const(12)
AUX = const(6)  # GPIO1..5 and VREF2

# Open-wire rule (datasheet "open wire check"): delta below -400 mV, or a reading of 0 V.
_OW_DELTA_100UV = const(-4000)
_OW_ZERO_100UV = const(10)  # "0.0000 V" read with 1 mV of margin

# Discharge timeout codes 0..15 in seconds (0 = off).
DCTO_S = (0, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800, 2400, 3600, 4500, 5400, 7200)

# All-channel conversion times in microseconds by mode (datasheet tables 5-7), index = MD.
_CELL_US = (0, 1113, 2335, 201317)
_AUX_US = (0, 1825, 3906, 335393)  # 5 GPIOs + 2nd reference
_STAT_US = (0, 742, 1600, 134107)
_OW_US = (0, 1113, 2335, 201317)

# CRC-15 table for polynomial 0x4599 (built once at import).
_PEC_TABLE = array("H", range(256))
for _i in range(256):
    _r = _i << 7
    for _b in range(8):
        _r = ((_r << 1) ^ 0x4599) if _r & 0x4000 else (_r << 1)
    _PEC_TABLE[_i] = _r & 0x7FFF


def pec15(data, start: int = 0, end: int = -1) -> int:
    """Packet error code of ``data[start:end]``: the CRC-15 remainder << 1, as sent MSB first.

    ``pec15(b"\\x00\\x01") == 0x3D6E`` (datasheet vector).
    """
    if end < 0:
        end = len(data)
    rem = 16  # initial value 0x0010
    for i in range(start, end):
        rem = ((rem << 8) ^ _PEC_TABLE[((rem >> 7) ^ data[i]) & 0xFF]) & 0x7FFF
    return rem << 1


def adcv_code(mode: int = MODE_NORMAL, dcp: bool = False, ch: int = 0) -> int:
    """ADCV command code: all cells when ``ch`` is 0."""
    return _ADCV | (mode & 3) << 7 | (1 << 4 if dcp else 0) | (ch & 7)


def conversion_ms(mode: int = MODE_NORMAL, kind: str = "cells") -> int:
    """Whole milliseconds to wait after a ``start_*`` before reading (rounded up, plus one tick)."""
    table = _CELL_US
    if kind == "aux":
        table = _AUX_US
    elif kind == "status":
        table = _STAT_US
    elif kind == "open_wire":
        table = _OW_US
    return table[mode & 3] // 1000 + 2


def dcto_code(seconds: int) -> int:
    """Smallest DCTO code whose timeout is at least ``seconds`` (0 = off; capped at 120 min)."""
    if seconds <= 0:
        return 0
    for code in range(1, 16):
        if DCTO_S[code] >= seconds:
            return code
    return 15


def open_lines(pu_100uv, pd_100uv, cell_count: int = CELLS) -> int:
    """Open sense lines from an ADOW pull-up and pull-down reading (datasheet rule).

    Returns a mask with bit n set when sense line C(n) is open, n = 0..``cell_count``.
    Lines above the top cell are tied to it on the board and not judged.
    """
    mask = 0
    if pu_100uv[0] < _OW_ZERO_100UV:
        mask |= 1
    for n in range(1, cell_count):
        pu = pu_100uv[n]
        pd = pd_100uv[n]
        if pu != CELL_UNKNOWN and pd != CELL_UNKNOWN and pu - pd < _OW_DELTA_100UV:
            mask |= 1 << n
    if pd_100uv[cell_count - 1] < _OW_ZERO_100UV:
        mask |= 1 << cell_count
    return mask


class PECError(Exception):
    """A register read kept failing its PEC after every retry."""


class LTC6811:
    """One LTC6811-1 on an SPI bus.

    :param ~busio.SPI spi: the SPI bus
    :param ~digitalio.DigitalInOut cs: chip select (active low)
    :param int baudrate: SPI clock, at most 1 MHz
    :param int retries: extra attempts of a read whose PEC fails
    """

    def __init__(self, spi: "SPI", cs: "DigitalInOut", *, baudrate: int = 1_000_000, retries: int = 2) -> None:
        if baudrate > 1_000_000:
            raise ValueError("LTC6811: SPI clock above 1 MHz")
        # Imported here so the pure parts (pec15, open_lines) load on a bare interpreter for tests.
        from adafruit_bus_device.spi_device import SPIDevice

        self._device = SPIDevice(spi, cs, baudrate=baudrate, polarity=1, phase=1)
        self.retries = retries
        self.pec_errors = 0  # every read whose PEC failed, retried or not (wraps at 16 bits)
        self._cmd = bytearray(4)
        self._tx = bytearray(8)
        self._rx = bytearray(8)
        self._one = bytearray(1)
        # CS low this long wakes the core from sleep (t_WAKE <= 400 us): dummy bytes, no sleep call.
        self._wake = bytearray(b"\xff" * (baudrate * 400 // 8_000_000 + 1))
        # Shadow of configuration register group A: GPIO pull-downs off, REFON on, nothing bleeding.
        self._cfg = bytearray(6)
        self._cfg[0] = 0xF8 | 0x04
        self._sum_cells_mv = 0
        self._die_temp_dc = 0
        self._va_mv = 0
        self._vd_mv = 0

    # -- low level ---------------------------------------------------------------------------
    def _fill_cmd(self, code: int) -> None:
        c = self._cmd
        c[0] = (code >> 8) & 0x07
        c[1] = code & 0xFF
        p = pec15(c, 0, 2)
        c[2] = p >> 8
        c[3] = p & 0xFF

    def command(self, code: int) -> None:
        """Send one 11-bit command (no data)."""
        self._fill_cmd(code)
        with self._device as spi:
            spi.write(self._cmd)

    def _write_group(self, code: int, data) -> None:
        self._fill_cmd(code)
        tx = self._tx
        for i in range(6):
            tx[i] = data[i]
        p = pec15(tx, 0, 6)
        tx[6] = p >> 8
        tx[7] = p & 0xFF
        with self._device as spi:
            spi.write(self._cmd)
            spi.write(tx)

    def _read_group(self, code: int) -> bytearray:
        """Read one register group into ``self._rx``; PEC-checked with retries."""
        self._fill_cmd(code)
        rx = self._rx
        for _ in range(self.retries + 1):
            with self._device as spi:
                spi.write(self._cmd)
                spi.readinto(rx, write_value=0xFF)
            if pec15(rx, 0, 6) == (rx[6] << 8 | rx[7]):
                return rx
            self.pec_errors = (self.pec_errors + 1) & 0xFFFF
        raise PECError("LTC6811: PEC failed on command 0x%03x" % code)

    # -- power and configuration ---------------------------------------------------------------
    def wake(self) -> None:
        """Wake the core from sleep: hold CS low while clocking dummy bytes for >= 400 us."""
        with self._device as spi:
            spi.write(self._wake)

    def write_config(self) -> None:
        """Write the configuration shadow to register group A (also feeds the AFE watchdog)."""
        self._write_group(_WRCFGA, self._cfg)

    def read_config_into(self, buf) -> None:
        """Read configuration register group A (6 bytes, PEC-checked) into ``buf``."""
        rx = self._read_group(_RDCFGA)
        for i in range(6):
            buf[i] = rx[i]

    @property
    def config(self) -> bytearray:
        """The configuration shadow (CFGR0..5) that ``write_config`` sends."""
        return self._cfg

    @property
    def refon(self) -> bool:
        """Reference stays powered between conversions (faster start, VREF2 up for thermistors)."""
        return bool(self._cfg[0] & 0x04)

    @refon.setter
    def refon(self, on: bool) -> None:
        self._cfg[0] = (self._cfg[0] & ~0x04) | (0x04 if on else 0)

    @property
    def adcopt(self) -> bool:
        return bool(self._cfg[0] & 0x01)

    @adcopt.setter
    def adcopt(self, on: bool) -> None:
        self._cfg[0] = (self._cfg[0] & ~0x01) | (0x01 if on else 0)

    @property
    def vuv_mv(self) -> int:
        """Under-voltage comparison level (1.6 mV steps; VUV = V / 1.6 mV - 1)."""
        code = self._cfg[1] | (self._cfg[2] & 0x0F) << 8
        return (code + 1) * 16 // 10

    @vuv_mv.setter
    def vuv_mv(self, mv: int) -> None:
        code = max(0, min(0xFFF, mv * 10 // 16 - 1))
        self._cfg[1] = code & 0xFF
        self._cfg[2] = (self._cfg[2] & 0xF0) | (code >> 8)

    @property
    def vov_mv(self) -> int:
        """Over-voltage comparison level (1.6 mV steps; VOV = V / 1.6 mV)."""
        code = (self._cfg[2] >> 4) | self._cfg[3] << 4
        return code * 16 // 10

    @vov_mv.setter
    def vov_mv(self, mv: int) -> None:
        code = max(0, min(0xFFF, mv * 10 // 16))
        self._cfg[2] = (self._cfg[2] & 0x0F) | (code & 0x0F) << 4
        self._cfg[3] = code >> 4

    @property
    def dcto(self) -> int:
        """Discharge timeout code 0..15 (``DCTO_S`` gives seconds; 0 = off)."""
        return self._cfg[5] >> 4

    @dcto.setter
    def dcto(self, code: int) -> None:
        self._cfg[5] = (self._cfg[5] & 0x0F) | (code & 0x0F) << 4

    @property
    def discharge(self) -> int:
        """DCC bits of the shadow: bit n-1 = cell n."""
        return self._cfg[4] | (self._cfg[5] & 0x0F) << 8

    @discharge.setter
    def discharge(self, mask: int) -> None:
        self._cfg[4] = mask & 0xFF
        self._cfg[5] = (self._cfg[5] & 0xF0) | ((mask >> 8) & 0x0F)

    def set_discharge(self, mask: int) -> None:
        """Close the discharge switches in ``mask`` (bit n-1 = cell n); keeps the other fields."""
        self.discharge = mask
        self.write_config()

    # -- conversions ---------------------------------------------------------------------------
    def start_cells(self, mode: int = MODE_NORMAL, discharge_permitted: bool = False) -> None:
        """Clear the cell registers, then ADCV all cells (DCP=0 opens each switch while its cell converts)."""
        self.command(_CLRCELL)
        self.command(adcv_code(mode, discharge_permitted, 0))

    def start_open_wire(self, pull_up: bool, mode: int = MODE_NORMAL, discharge_permitted: bool = False) -> None:
        """ADOW all cells with the pull-up (``True``) or pull-down current; read with ``read_cells_into``.

        Run it twice per direction (datasheet), then judge with ``open_lines``.
        """
        code = _ADOW | (mode & 3) << 7 | (0x40 if pull_up else 0) | (0x10 if discharge_permitted else 0)
        self.command(code)

    def start_aux(self, mode: int = MODE_NORMAL) -> None:
        """Clear, then convert GPIO1..5 and the second reference (ADAX, CHG=0)."""
        self.command(_CLRAUX)
        self.command(_ADAX | (mode & 3) << 7)

    def start_status(self, mode: int = MODE_NORMAL) -> None:
        """Clear, then convert sum of cells, die temperature, VA and VD (ADSTAT, CHST=0)."""
        self.command(_CLRSTAT)
        self.command(_ADSTAT | (mode & 3) << 7)

    def clear_cells(self) -> None:
        self.command(_CLRCELL)

    @property
    def conversion_done(self) -> bool:
        """Poll the ADC (PLADC): ``True`` once the last started conversion has finished."""
        self._fill_cmd(_PLADC)
        with self._device as spi:
            spi.write(self._cmd)
            spi.readinto(self._one, write_value=0xFF)
        return self._one[0] != 0

    # -- results -------------------------------------------------------------------------------
    def _read_words(self, codes, buf, count: int) -> int:
        mask = 0
        n = 0
        for code in codes:
            rx = self._read_group(code)
            for j in range(0, 6, 2):
                if n >= count:
                    return mask
                v = rx[j] | rx[j + 1] << 8
                if v == CELL_UNKNOWN:
                    mask |= 1 << n
                buf[n] = v
                n += 1
        return mask

    def read_cells_into(self, buf) -> int:
        """Read the 12 cell voltages (100 uV units, cell 1 first) into ``buf``.

        Returns a mask of cells that held no conversion (their entry is ``CELL_UNKNOWN``);
        0 when all are fresh. Raises ``PECError`` when a group fails its PEC after every retry.
        """
        return self._read_words(_CELL_GROUPS, buf, CELLS)

    def read_aux_into(self, buf) -> int:
        """Read GPIO1..5 and VREF2 (100 uV units, relative to V-) into ``buf`` (6 entries).

        Returns a mask of entries that held no conversion.
        """
        return self._read_words(_AUX_GROUPS, buf, AUX)

    def read_status(self) -> bool:
        """Read status group A; ``True`` when it held a fresh conversion (see the properties)."""
        rx = self._read_group(_RDSTATA)
        sc = rx[0] | rx[1] << 8
        itmp = rx[2] | rx[3] << 8
        va = rx[4] | rx[5] << 8
        if sc == CELL_UNKNOWN or itmp == CELL_UNKNOWN:
            return False
        self._sum_cells_mv = sc * 2  # SC LSB = 20 x 100 uV
        self._die_temp_dc = itmp * 2 // 15 - 2730  # ITMP x 100 uV / 7.5 mV/K - 273 C
        self._va_mv = va // 10
        rx = self._read_group(_RDSTATB)
        vd = rx[0] | rx[1] << 8
        if vd != CELL_UNKNOWN:
            self._vd_mv = vd // 10
        return True

    @property
    def sum_cells_mv(self) -> int:
        """Sum of all 12 cell inputs from the last ``read_status``."""
        return self._sum_cells_mv

    @property
    def die_temp_dc(self) -> int:
        """Die temperature (0.1 C) from the last ``read_status``."""
        return self._die_temp_dc

    @property
    def va_mv(self) -> int:
        return self._va_mv

    @property
    def vd_mv(self) -> int:
        return self._vd_mv


_CELL_GROUPS = (_RDCVA, _RDCVB, _RDCVC, _RDCVD)
_AUX_GROUPS = (_RDAUXA, _RDAUXB)
