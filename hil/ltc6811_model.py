"""Register-level model of one LTC6811-1 (PC only), talked to through ``hil.sim_spi.SimSPI``.

What it does, from the datasheet (DESIGN.md §2):
- commands are 2 bytes + PEC; a command with a bad PEC is ignored (and does not feed the watchdog);
  WRCFGA data with a bad PEC is ignored; every read group goes out with its PEC;
- ADCV / ADOW / ADAX / ADSTAT take the datasheet time per mode; results appear when the conversion ends;
  CLRCELL / CLRAUX / CLRSTAT set registers to 0xFFFF; PLADC reads 0x00 while converting;
- discharge switches follow DCC, open while cells convert with DCP = 0, and open when the discharge timer (DCTO)
  runs out; the 2 s watchdog resets the configuration (keeping DCC/DCTO while the discharge timer runs) and the
  chip goes to sleep; in sleep, activity on CS starts a 400 us wake-up during which commands are lost;
- open sense lines (``open_wire(line, True)``) shift ADCV and ADOW results the way the datasheet rule expects;
- injected PEC errors corrupt the next read groups on MISO.

Not modelled: the reference power-up time with REFON = 0, ADCOPT's alternate rates, GPIO digital outputs and
pull-downs, the S-pin PWM, isoSPI and the daisy-chained LTC6811-2 addressing, ADC noise (readings are the source
rounded to 100 uV).

Time: the model reads the rig's ``VirtualClock`` and adds the SPI byte time within a millisecond, so a driver
that clocks dummy bytes to wake the chip works without moving the shared clock.
"""

import math
from collections import deque

CELLS = 12
T_WAKE_US = 400
WATCHDOG_US = 2_000_000
DCTO_S = (0, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800, 2400, 3600, 4500, 5400, 7200)

# All-channel conversion times (us) by MD (0 = 422 Hz, 1 = 27 kHz, 2 = 7 kHz, 3 = 26 Hz), datasheet tables 5-7.
CELL_US = (12807, 1113, 2335, 201317)
AUX_US = (21282, 1825, 3906, 335393)
STAT_US = (8537, 742, 1600, 134107)

VREF2_UV = 3_000_000
NTC_R25_OHM = 10000.0
NTC_BETA = 3435.0
NTC_PULLUP_OHM = 10000.0
CELL_FULL_SCALE = 57344  # 5.7344 V: the ADC never produces 0xFFFF


def pec15_bitwise(data) -> int:
    """Bit-serial CRC-15 of the datasheet (written independently of the driver's table version)."""
    rem = 16
    for b in data:
        for bit in range(7, -1, -1):
            din = (b >> bit) & 1
            in0 = din ^ ((rem >> 14) & 1)
            rem = (rem << 1) & 0x7FFF
            if in0:
                rem ^= 0x4599
    return rem << 1


def _byte_table():
    # The bit-serial algorithm run once per byte value from a zero remainder: the model stays independent of the
    # driver's table, and the rig (which checks every PEC on the simulated bus) runs several times faster.
    table = []
    for b in range(256):
        rem = 0
        for bit in range(7, -1, -1):
            in0 = ((b >> bit) & 1) ^ ((rem >> 14) & 1)
            rem = (rem << 1) & 0x7FFF
            if in0:
                rem ^= 0x4599
        table.append(rem)
    return tuple(table)


_BYTE_TABLE = _byte_table()


def pec15(data) -> int:
    """The datasheet's CRC-15, byte at a time (equal to :func:`pec15_bitwise`)."""
    rem = 16
    table = _BYTE_TABLE
    for b in data:
        # CRC linearity: shifting 8 bits in = the remainder's top byte xor the data byte, through the table.
        rem = ((rem << 8) & 0x7FFF) ^ table[((rem >> 7) ^ b) & 0xFF]
    return rem << 1


def ntc_gpio_uv(temp_dc, vref_uv: int = VREF2_UV, beta: float = NTC_BETA) -> int:
    """GPIO voltage of a 10 kOhm NTC to V- with a 10 kOhm pull-up to VREF2; ``None`` = no sensor (reads VREF2)."""
    if temp_dc is None:
        return vref_uv
    t_k = temp_dc / 10.0 + 273.15
    r = NTC_R25_OHM * math.exp(beta * (1.0 / t_k - 1.0 / 298.15))
    return int(round(vref_uv * r / (r + NTC_PULLUP_OHM)))


class LTC6811Model:
    """One LTC6811-1.

    :param clock: ``hil.clock.VirtualClock``
    :param cells_uv: callable returning 12 ints, uV between C(n-1) and C(n), cell 1 first
    :param gpio_uv: callable returning 5 ints, uV at GPIO1..5 relative to V-; default: the NTCs of
        ``ntc_temp_dc`` (two entries, GPIO1/GPIO2; ``None`` = not fitted) and 0 V on GPIO3..5

    Knobs and observables for tests and the rig: ``die_temp_dc``, ``ntc_temp_dc``, ``open_wire(line, on)``,
    ``inject_pec_errors(n)``, ``power_on_reset()``, ``corrupt_reads``, ``discharge_mask``, ``asleep``, ``config``,
    ``commands``.
    """

    def __init__(self, clock, cells_uv, gpio_uv=None) -> None:
        self.clock = clock
        self.cells_uv = cells_uv
        self.gpio_uv = gpio_uv if gpio_uv is not None else self._default_gpio
        self.die_temp_dc = 250
        self.ntc_temp_dc = [250, 250]
        self.va_uv = 5_000_000
        self.vd_uv = 3_300_000
        self.vref2_uv = VREF2_UV
        self.open_lines = set()
        self.corrupt_reads = False  # every read group goes out with a bad PEC
        self._inject = 0
        self.commands = deque(maxlen=4096)  # (time_us, code) of the latest accepted commands, for tests
        self.record_commands = True
        self.wakeups = 0
        self.sleeps = 0
        self.watchdog_resets = 0
        self.now_us = clock.total_us
        self._asleep = True  # powered up, nothing talked to it yet
        self._wake_done_us = None
        self._last_cmd_us = self.now_us
        self._reset_config()
        self.cell_reg = [0xFFFF] * CELLS
        self.aux_reg = [0xFFFF] * 6
        self.stat_reg = [0xFFFF] * 4  # SC, ITMP, VA, VD
        self._pending = None  # (kind, done_us, results, pull)
        self._converting_cells_until = None
        self._dcp = False
        self._dcto_end_us = None
        self._tx = None

    # -- knobs -----------------------------------------------------------------------------
    def open_wire(self, line: int, is_open: bool = True) -> None:
        """Open (or reconnect) sense line C(``line``), 0..12."""
        if not 0 <= line <= CELLS:
            raise ValueError("sense lines are C0..C12")
        if is_open:
            self.open_lines.add(line)
        else:
            self.open_lines.discard(line)

    def inject_pec_errors(self, count: int) -> None:
        """Corrupt the PEC of the next ``count`` register groups sent on MISO."""
        self._inject += count

    def power_on_reset(self) -> None:
        """A supply dip resets the chip while the MCU runs on: configuration back to its defaults (REFON off,
        DCTO 0, every discharge switch open); it stays awake."""
        self._reset_config()
        self._dcto_end_us = None

    def _default_gpio(self):
        g = [0] * 5
        for i in range(2):
            g[i] = ntc_gpio_uv(self.ntc_temp_dc[i], self.vref2_uv)
        return g

    # -- observables -----------------------------------------------------------------------
    @property
    def config(self) -> bytes:
        self._advance(self.clock.total_us)
        return bytes(self._cfg)

    @property
    def dcc(self) -> int:
        """DCC bits in the configuration register (what the chip was told)."""
        self._advance(self.clock.total_us)
        return self._cfg[4] | (self._cfg[5] & 0x0F) << 8

    @property
    def dcto_code(self) -> int:
        self._advance(self.clock.total_us)
        return self._cfg[5] >> 4

    @property
    def discharge_mask(self) -> int:
        """Switches really closed now: DCC, minus a DCP = 0 cell conversion in progress."""
        now = max(self.now_us, self.clock.total_us)
        self._advance(now)
        mask = self._cfg[4] | (self._cfg[5] & 0x0F) << 8
        if self._converting_cells_until is not None and now < self._converting_cells_until and not self._dcp:
            return 0
        return mask

    @property
    def asleep(self) -> bool:
        """The core is in sleep (watchdog ran out, or never woken)."""
        self._advance(max(self.now_us, self.clock.total_us))
        return self._asleep

    @property
    def converting(self) -> bool:
        self._advance(max(self.now_us, self.clock.total_us))
        return self._pending is not None

    # -- time ------------------------------------------------------------------------------
    def _reset_config(self, keep_discharge: bool = False) -> None:
        old = bytes(self._cfg) if hasattr(self, "_cfg") else bytes(6)
        self._cfg = bytearray(6)
        self._cfg[0] = 0xF8  # GPIO pull-downs off
        if keep_discharge:
            self._cfg[4] = old[4]
            self._cfg[5] = old[5]

    def _advance(self, now_us: int) -> None:
        """Run the background timers (conversion end, discharge timer, watchdog) up to ``now_us``."""
        if now_us > self.now_us:
            self.now_us = now_us
        now = self.now_us
        if self._pending is not None and now >= self._pending[1]:
            self._finish_conversion()
        if self._converting_cells_until is not None and now >= self._converting_cells_until:
            self._converting_cells_until = None
        if self._dcto_end_us is not None and now >= self._dcto_end_us:
            self._cfg[4] = 0
            self._cfg[5] &= 0xF0
            self._dcto_end_us = None
        if self._asleep and self._wake_done_us is not None and now >= self._wake_done_us:
            self._asleep = False
            self.wakeups += 1
            self._last_cmd_us = self._wake_done_us
            self._wake_done_us = None
        if not self._asleep and now - self._last_cmd_us >= WATCHDOG_US:
            # Watchdog: configuration back to default; DCC/DCTO survive while the discharge timer runs.
            self.watchdog_resets += 1
            self._reset_config(keep_discharge=self._dcto_end_us is not None)
            self._go_to_sleep()

    def _go_to_sleep(self) -> None:
        self._asleep = True
        self.sleeps += 1
        self._pending = None
        self._converting_cells_until = None
        self._wake_done_us = None
        self.cell_reg = [0xFFFF] * CELLS
        self.aux_reg = [0xFFFF] * 6
        self.stat_reg = [0xFFFF] * 4

    # -- SPI side (called by SimSPI) -------------------------------------------------------
    def begin(self) -> None:
        """CS falls."""
        self._advance(self.clock.total_us)
        # A transaction that starts in sleep only wakes the core: its bytes are lost.
        self._lost = self._asleep
        if self._asleep and self._wake_done_us is None:
            self._wake_done_us = self.now_us + T_WAKE_US
        self._tx = bytearray()
        self._rx_src = None
        self._valid = False

    def end(self) -> None:
        """CS rises: a write command takes effect when its 6 data bytes and PEC arrived intact."""
        self._advance(max(self.now_us, self.clock.total_us))
        tx = self._tx
        self._tx = None
        if tx is None or not self._valid or self._lost:
            return
        code = (tx[0] & 0x07) << 8 | tx[1]
        if code == 0x001 and len(tx) >= 12:
            data = tx[4:10]
            if pec15(data) == (tx[10] << 8 | tx[11]):
                self._write_config(data)

    def transfer(self, mosi: int, byte_us: int, ok: bool = True) -> int:
        """Clock one byte: returns the MISO byte. ``ok`` False = wrong SPI mode or clock (garbage)."""
        self._advance(max(self.now_us, self.clock.total_us) + byte_us)
        if self._tx is None:
            return 0xFF  # clocked without CS
        if self._lost or self._asleep:
            return 0xFF
        if not ok:
            self._tx.append(mosi ^ 0x55)
            return 0xFF
        tx = self._tx
        tx.append(mosi)
        n = len(tx)
        if n == 4:
            code = (tx[0] & 0x07) << 8 | tx[1]
            if tx[0] & 0xF8 == 0 and pec15(tx[:2]) == (tx[2] << 8 | tx[3]):
                self._valid = True
                self._last_cmd_us = self.now_us
                if self.record_commands:
                    self.commands.append((self.now_us, code))
                self._rx_src = self._execute(code)
            return 0xFF
        if n > 4 and self._valid and self._rx_src is not None:
            src = self._rx_src
            if src == "pladc":
                return 0x00 if self._pending is not None else 0xFF
            i = n - 5
            if i < len(src):
                return src[i]
        return 0xFF

    # -- commands --------------------------------------------------------------------------
    def _group(self, data6) -> bytes:
        data = bytes(data6)
        p = pec15(data)
        if self.corrupt_reads or self._inject > 0:
            if self._inject > 0:
                self._inject -= 1
            p ^= 0x0100
        return data + bytes((p >> 8, p & 0xFF))

    @staticmethod
    def _words(values) -> bytes:
        out = bytearray()
        for v in values:
            out.append(v & 0xFF)
            out.append((v >> 8) & 0xFF)
        return bytes(out)

    def _execute(self, code: int):
        if code == 0x002:  # RDCFGA: GPIO bits read the pins (high), DTEN reads the pin (tied high)
            cfg = bytearray(self._cfg)
            cfg[0] |= 0xF8 | 0x02
            return self._group(cfg)
        if code in (0x004, 0x006, 0x008, 0x00A):
            k = (code - 0x004) // 2 * 3
            return self._group(self._words(self.cell_reg[k : k + 3]))
        if code in (0x00C, 0x00E):
            k = (code - 0x00C) // 2 * 3
            return self._group(self._words(self.aux_reg[k : k + 3]))
        if code == 0x010:
            return self._group(self._words(self.stat_reg[0:3]))
        if code == 0x012:
            return self._group(self._words([self.stat_reg[3]]) + self._flags())
        if code == 0x711:
            self.cell_reg = [0xFFFF] * CELLS
            return None
        if code == 0x712:
            self.aux_reg = [0xFFFF] * 6
            return None
        if code == 0x713:
            self.stat_reg = [0xFFFF] * 4
            return None
        if code == 0x714:
            return "pladc"
        if code == 0x715:
            return None
        md = (code >> 7) & 3
        # Conversion commands, decoded by their fixed bits.
        if (code & 0x668) == 0x260:  # ADCV: 0 1 MD 1 1 DCP 0 CH
            self._start_cells(md, bool(code & 0x10), code & 0x07, None)
        elif (code & 0x628) == 0x228:  # ADOW: 0 1 MD PUP 1 DCP 1 CH
            self._start_cells(md, bool(code & 0x10), code & 0x07, bool(code & 0x40))
        elif (code & 0x678) == 0x460:  # ADAX: 1 MD 1 1 0 0 CHG
            self._start("aux", AUX_US[md], code & 0x07)
        elif (code & 0x678) == 0x468:  # ADSTAT: 1 MD 1 1 0 1 CHST
            self._start("stat", STAT_US[md], code & 0x07)
        return None

    def _flags(self) -> bytes:
        vuv = self._cfg[1] | (self._cfg[2] & 0x0F) << 8
        vov = (self._cfg[2] >> 4) | self._cfg[3] << 4
        bits = 0
        for i, v in enumerate(self.cell_reg):
            if v == 0xFFFF:
                continue
            if v < (vuv + 1) * 16:
                bits |= 1 << (2 * i)
            if v > vov * 16:
                bits |= 1 << (2 * i + 1)
        return bytes((bits & 0xFF, (bits >> 8) & 0xFF, (bits >> 16) & 0xFF, 0x10))

    def _write_config(self, data) -> None:
        self._cfg[0] = (data[0] & 0xFD) | 0x00
        for i in range(1, 6):
            self._cfg[i] = data[i]
        code = data[5] >> 4
        self._dcto_end_us = self.now_us + DCTO_S[code] * 1_000_000 if code else None

    def _start_cells(self, md: int, dcp: bool, ch: int, pull) -> None:
        dur = CELL_US[md]
        self._dcp = dcp
        # Switches open before sampling (DCP = 0), so the pack sees no bleed while converting.
        self._converting_cells_until = self.now_us + dur
        v = [int(x) for x in self.cells_uv()]
        v = self._sense(v, pull)
        codes = [max(0, min(CELL_FULL_SCALE, (x + 50) // 100)) for x in v]
        selected = range(CELLS) if ch == 0 else (ch - 1, ch + 5)
        self._pending = ("cells", self.now_us + dur, codes, selected)

    def _sense(self, v, pull):
        """Cell readings with open sense lines: ``pull`` None = ADCV, True/False = ADOW pull-up/down."""
        for line in sorted(self.open_lines):
            lo = line - 1  # cell below the line (index), reads C(line) - C(line-1)
            hi = line  # cell above the line (index)
            if pull is None:
                # A floating line settles between its neighbours.
                if 0 <= lo < CELLS and hi < CELLS:
                    s = v[lo] + v[hi]
                    v[lo] = s // 2
                    v[hi] = s - s // 2
                elif lo < 0:
                    v[hi] = v[hi] // 2
                else:
                    v[lo] = v[lo] // 2
            elif pull:
                # The pull-up current drags the open line up to the one above it.
                if hi < CELLS:
                    if lo >= 0:
                        v[lo] += v[hi]
                    v[hi] = 0
            else:
                if lo >= 0:
                    if hi < CELLS:
                        v[hi] += v[lo]
                    v[lo] = 0
        return v

    def _start(self, kind: str, dur: int, sel: int) -> None:
        if kind == "aux":
            g = [int(x) for x in self.gpio_uv()]
            vals = [max(0, (x + 50) // 100) for x in g[:5]] + [(self.vref2_uv + 50) // 100]
        else:
            sc = sum(max(0, int(x)) for x in self.cells_uv()) // 2000
            itmp = (self.die_temp_dc + 2730) * 75 // 10
            vals = [sc, itmp, self.va_uv // 100, self.vd_uv // 100]
        if sel == 0:
            selected = range(len(vals))
        else:
            selected = (sel - 1,) if sel - 1 < len(vals) else ()
        self._pending = (kind, self.now_us + dur, vals, selected)

    def _finish_conversion(self) -> None:
        kind, _, vals, selected = self._pending
        self._pending = None
        reg = self.cell_reg if kind == "cells" else self.aux_reg if kind == "aux" else self.stat_reg
        for i in selected:
            reg[i] = vals[i]
