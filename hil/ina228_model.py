"""A register-level model of the TI INA228 power monitor on ``hil.sim_i2c.SimI2C`` (PC only).

Registers, sizes, reset values and scaling follow the INA228 datasheet (SBOSA20):

| addr | name | bytes | reset | notes |
|---|---|---|---|---|
| 0x00 | CONFIG | 2 | 0x0000 | bit 15 RST (self-clearing), bit 14 RSTACC, bit 4 ADCRANGE |
| 0x01 | ADC_CONFIG | 2 | 0xFB68 | MODE[15:12], VBUSCT, VSHCT, VTCT, AVG |
| 0x02 | SHUNT_CAL | 2 | 0x1000 | CURRENT = VSHUNT_raw x 4096 / SHUNT_CAL (both ADC ranges) |
| 0x04 | VSHUNT | 3 | - | 20-bit two's complement in [23:4]; 312.5 nV/LSB (ADCRANGE 0), 78.125 nV (1) |
| 0x05 | VBUS | 3 | - | 20-bit in [23:4]; 195.3125 uV/LSB; 0..85 V |
| 0x06 | DIETEMP | 2 | - | 7.8125 m degC/LSB |
| 0x07 | CURRENT | 3 | - | 20-bit two's complement in [23:4]; CURRENT_LSB |
| 0x0B | DIAG_ALRT | 2 | 0x0001 | 15 ALATCH, 14 CNVR, 12 APOL, 6 SHNTOL, 5 SHNTUL, 4 BUSOL, 3 BUSUL, 1 CNVRF |
| 0x0C | SOVL | 2 | 0x7FFF | two's complement, 5 uV/LSB (ADCRANGE 0), 1.25 uV (1) |
| 0x0D | SUVL | 2 | 0x8000 | as SOVL |
| 0x0E | BOVL | 2 | 0x7FFF | 3.125 mV/LSB |
| 0x0F | BUVL | 2 | 0x0000 | 3.125 mV/LSB |
| 0x3E | MANUFACTURER_ID | 2 | 0x5449 | "TI" |
| 0x3F | DEVICE_ID | 2 | 0x2281 | 0x228 in [15:4], revision 1 |

The ALERT pin is open drain, active low unless APOL = 1. A limit flag in latched mode (ALATCH = 1)
and the pin stay set until DIAG_ALRT is read; in transparent mode they follow the measurement.
With CNVR = 1 the pin also pulses on every conversion (CNVRF, cleared by reading DIAG_ALRT).

The physics side is in integers: ``set_current(current_ma)`` (positive flows IN+ to IN-) and
``set_bus(bus_mv)``; the model holds ``shunt_uohm``. The alert comparison runs on every change.
"""

_SIZES = {0x00: 2, 0x01: 2, 0x02: 2, 0x03: 2, 0x04: 3, 0x05: 3, 0x06: 2, 0x07: 3, 0x08: 3, 0x09: 5, 0x0A: 5,
          0x0B: 2, 0x0C: 2, 0x0D: 2, 0x0E: 2, 0x0F: 2, 0x10: 2, 0x11: 2, 0x3E: 2, 0x3F: 2}
_RESET = {0x00: 0x0000, 0x01: 0xFB68, 0x02: 0x1000, 0x03: 0x0000, 0x0B: 0x0001, 0x0C: 0x7FFF, 0x0D: 0x8000,
          0x0E: 0x7FFF, 0x0F: 0x0000, 0x10: 0x7FFF, 0x11: 0xFFFF, 0x3E: 0x5449, 0x3F: 0x2281}
_WRITABLE = (0x00, 0x01, 0x02, 0x03, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11)

SHNTOL = 1 << 6
SHNTUL = 1 << 5
BUSOL = 1 << 4
BUSUL = 1 << 3
CNVRF = 1 << 1
_FLAG_MASK = 0x0FFF & ~0x0001  # flag bits [11:1]; MEMSTAT stays 1


def _s16(x: int) -> int:
    return x - 0x10000 if x & 0x8000 else x


class INA228Model:
    def __init__(self, shunt_uohm: int = 250, address: int = 0x40, clock=None) -> None:
        self.shunt_uohm = shunt_uohm
        self.address = address
        self.clock = clock
        self.current_ma = 0
        self.bus_mv = 0
        self.die_temp_dc = 250
        self.regs = {}
        self._ptr = 0
        self.writes = []  # (reg, value) of every register write, for tests
        self.reset()

    def attach_to(self, i2c) -> "INA228Model":
        i2c.attach(self.address, self)
        return self

    def reset(self) -> None:
        self.regs = dict(_RESET)
        self._update()

    # -- physics -------------------------------------------------------------------------------
    def set_current(self, current_ma: int) -> None:
        self.current_ma = int(current_ma)
        self._update()

    def set_bus(self, bus_mv: int) -> None:
        self.bus_mv = int(bus_mv)
        self._update()

    @property
    def adc_range(self) -> int:
        return (self.regs[0x00] >> 4) & 1

    @property
    def vshunt_raw(self) -> int:
        """The 20-bit shunt reading (signed) for the present current, saturating at full scale."""
        nv = self.current_ma * self.shunt_uohm  # mA x uOhm = nV
        lsb_x8 = 625 if self.adc_range else 2500  # LSB in nV x 8 (78.125 / 312.5)
        raw = (nv * 8) // lsb_x8 if nv >= 0 else -((-nv * 8) // lsb_x8)
        return max(-(1 << 19), min((1 << 19) - 1, raw))

    @property
    def vbus_raw(self) -> int:
        raw = (max(0, self.bus_mv) * 128) // 25  # 195.3125 uV = 25/128 mV
        return min(raw, 85000 * 128 // 25)

    def _update(self) -> None:
        diag = self.regs[0x0B]
        latched = diag & 0x8000
        flags = 0
        vs16 = self.vshunt_raw >> 4 if self.vshunt_raw >= 0 else -((-self.vshunt_raw) >> 4)
        # SOVL/SUVL LSB (5 uV / 1.25 uV) is 16 VSHUNT LSBs in either range.
        if vs16 > _s16(self.regs[0x0C]):
            flags |= SHNTOL
        if vs16 < _s16(self.regs[0x0D]):
            flags |= SHNTUL
        bus16 = (self.vbus_raw * 25 // 128) * 8 // 25  # 3.125 mV/LSB, from the (saturating) reading
        if bus16 > self.regs[0x0E]:
            flags |= BUSOL
        if bus16 < self.regs[0x0F]:
            flags |= BUSUL
        flags |= CNVRF
        if latched:
            diag |= flags
        else:
            diag = (diag & ~_FLAG_MASK) | flags
        self.regs[0x0B] = diag | 0x0001

    @property
    def alert_active(self) -> bool:
        diag = self.regs[0x0B]
        active = bool(diag & (SHNTOL | SHNTUL | BUSOL | BUSUL))
        if diag & (1 << 14) and diag & CNVRF:
            active = True
        return active

    @property
    def alert_pin(self) -> bool:
        """The ALERT pin level: low when active unless APOL = 1."""
        apol = bool(self.regs[0x0B] & (1 << 12))
        return self.alert_active if apol else not self.alert_active

    # -- registers ----------------------------------------------------------------------------
    def _read_reg(self, reg: int) -> int:
        if reg == 0x04:
            return (self.vshunt_raw << 4) & 0xFFFFFF
        if reg == 0x05:
            return (self.vbus_raw << 4) & 0xFFFFFF
        if reg == 0x06:
            return (self.die_temp_dc * 128 // 10) & 0xFFFF  # 7.8125 m degC/LSB
        if reg == 0x07:
            cal = self.regs[0x02] or 1
            cur = (self.vshunt_raw * 4096) // cal if self.vshunt_raw >= 0 else -((-self.vshunt_raw * 4096) // cal)
            cur = max(-(1 << 19), min((1 << 19) - 1, cur))
            return (cur << 4) & 0xFFFFFF
        if reg in (0x08, 0x09, 0x0A):
            return 0
        value = self.regs.get(reg, 0)
        if reg == 0x0B:
            # Reading DIAG_ALRT clears the latched flags and CNVRF; re-evaluate the live comparison.
            self.regs[0x0B] = value & ~_FLAG_MASK
            self._update_without_cnvr()
        return value

    def _update_without_cnvr(self) -> None:
        self._update()
        self.regs[0x0B] &= ~CNVRF

    def i2c_write(self, data: bytes) -> None:
        if not data:
            return  # an address probe
        self._ptr = data[0]
        if len(data) >= 3 and self._ptr in _WRITABLE:
            value = (data[1] << 8) | data[2]
            self.writes.append((self._ptr, value))
            if self._ptr == 0x00 and value & 0x8000:
                self.reset()
                return
            if self._ptr == 0x0B:
                value = (value & 0xF000) | (self.regs[0x0B] & 0x0FFF)  # flags are read-only
            self.regs[self._ptr] = value
            self._update()

    def i2c_read(self, n: int) -> bytes:
        size = _SIZES.get(self._ptr, 2)
        value = self._read_reg(self._ptr)
        out = value.to_bytes(size, "big")
        return (out + bytes(n))[:n]
