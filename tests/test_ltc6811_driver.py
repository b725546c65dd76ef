"""LTC6811 driver against the register-level chip model on a simulated SPI bus (datasheet behaviour)."""

import pytest

import ltc6811
from hil.clock import VirtualClock
from hil.ltc6811_model import LTC6811Model, ntc_gpio_uv
from hil.sim_pins import SimPin
from hil.sim_spi import SimSPI
from ltc6811 import CELL_UNKNOWN, LTC6811, PECError, open_lines


class Chip:
    def __init__(self, cells_uv=None, start_ms=0):
        self.clock = VirtualClock(start_ms)
        self.cells_uv = list(cells_uv or [3_300_000 + 1_000 * i for i in range(12)])
        self.model = LTC6811Model(self.clock, lambda: self.cells_uv)
        self.cs = SimPin("cs", self.clock)
        self.spi = SimSPI(self.model, cs=self.cs, record=True)
        self.afe = LTC6811(self.spi, self.cs)

    def wait(self, ms):
        self.clock.advance(ms)


def test_command_bytes_on_the_wire_match_the_datasheet():
    c = Chip()
    c.afe.wake()
    c.spi.transactions.clear()
    c.afe.set_discharge(0)
    c.afe.start_cells()  # CLRCELL then ADCV
    c.wait(ltc6811.conversion_ms())
    c.afe.read_cells_into([0] * 12)
    t = c.spi.transactions
    assert t[0][:4] == bytes([0x00, 0x01, 0x3D, 0x6E])  # WRCFGA
    assert t[1] == bytes([0x07, 0x11, 0xC9, 0xC0])  # CLRCELL
    assert t[2] == bytes([0x03, 0x60, 0xF4, 0x6C])  # ADCV MD=10 (7 kHz), DCP=0, all cells
    assert t[3][:4] == bytes([0x00, 0x04, 0x07, 0xC2])  # RDCVA
    assert len(t[3]) == 4 + 8  # 6 data bytes + PEC clocked out


def test_spi_is_mode_3_at_most_1mhz_and_cs_is_released():
    c = Chip()
    c.afe.wake()
    assert (c.spi.polarity, c.spi.phase) == (1, 1)
    assert c.spi.baudrate <= 1_000_000
    assert c.cs.value is True  # idle high between transactions
    with pytest.raises(ValueError):
        LTC6811(c.spi, c.cs, baudrate=2_000_000)


def test_reads_all_12_cells_in_100uv():
    c = Chip()
    c.afe.wake()
    c.afe.start_cells()
    c.wait(ltc6811.conversion_ms())
    buf = [0] * 12
    assert c.afe.read_cells_into(buf) == 0
    assert buf == [33000 + 10 * i for i in range(12)]


def test_a_read_before_the_conversion_lands_is_unknown_not_a_voltage():
    c = Chip()
    c.afe.wake()
    c.afe.start_cells()
    buf = [0] * 12
    mask = c.afe.read_cells_into(buf)  # no time has passed: registers still cleared
    assert mask == 0xFFF
    assert all(v == CELL_UNKNOWN for v in buf)
    assert c.afe.conversion_done is False
    c.wait(ltc6811.conversion_ms())
    assert c.afe.conversion_done is True
    assert c.afe.read_cells_into(buf) == 0


def test_corrupted_pec_is_retried_then_raised():
    c = Chip()
    c.afe.wake()
    c.afe.start_cells()
    c.wait(ltc6811.conversion_ms())
    buf = [0] * 12
    c.model.inject_pec_errors(2)  # two bad groups, then good ones: the retries absorb them
    assert c.afe.read_cells_into(buf) == 0
    assert buf[0] == 33000
    assert c.afe.pec_errors == 2
    c.spi.transactions.clear()
    c.model.inject_pec_errors(3)  # 1 try + 2 retries all bad
    with pytest.raises(PECError):
        c.afe.read_cells_into(buf)
    assert [t[:2] for t in c.spi.transactions] == [b"\x00\x04"] * 3
    assert c.afe.pec_errors == 5


def test_model_ignores_a_command_with_a_bad_pec():
    c = Chip()
    c.afe.wake()
    n = len(c.model.commands)
    with c.afe._device as spi:
        spi.write(bytes([0x03, 0x60, 0xF4, 0x6D]))  # ADCV with one PEC bit wrong
    assert len(c.model.commands) == n
    assert not c.model.converting


def test_wrong_spi_mode_reads_garbage_and_raises():
    c = Chip()
    c.afe.wake()
    c.afe._device.polarity = 0
    c.afe._device.phase = 0
    with pytest.raises(PECError):
        c.afe.read_cells_into([0] * 12)


def test_config_round_trip_with_thresholds_and_dcto():
    c = Chip()
    c.afe.wake()
    c.afe.vuv_mv = 2800
    c.afe.vov_mv = 4200
    c.afe.dcto = ltc6811.dcto_code(30)
    c.afe.discharge = 0b1010_0101_0101
    c.afe.write_config()
    got = bytearray(6)
    c.afe.read_config_into(got)
    want = bytearray(c.afe.config)
    want[0] |= 0x02  # DTEN reads the pin
    assert got == want
    assert c.afe.vuv_mv == 2800 and c.afe.vov_mv == 4200
    assert c.model.dcc == 0b1010_0101_0101
    assert c.model.dcto_code == 1


def test_set_discharge_keeps_other_fields():
    c = Chip()
    c.afe.wake()
    c.afe.vov_mv = 4200
    c.afe.write_config()
    before = bytes(c.model.config[:4])
    c.afe.set_discharge(1 << 11 | 1)
    assert c.model.dcc == 1 << 11 | 1
    assert bytes(c.model.config[:4]) == before
    assert c.model.discharge_mask == 1 << 11 | 1


def test_dcp0_opens_switches_while_cells_convert():
    c = Chip()
    c.afe.wake()
    c.afe.set_discharge(0b100)
    c.afe.start_cells(discharge_permitted=False)
    assert c.model.discharge_mask == 0
    c.wait(ltc6811.conversion_ms())
    assert c.model.discharge_mask == 0b100
    c.afe.start_cells(discharge_permitted=True)
    assert c.model.discharge_mask == 0b100


def test_watchdog_sleeps_the_chip_and_opens_switches_after_2s():
    c = Chip()
    c.afe.wake()
    c.afe.set_discharge(0b1)
    c.wait(1999)
    assert not c.model.asleep and c.model.discharge_mask == 1
    c.wait(2)
    assert c.model.asleep
    assert c.model.discharge_mask == 0


def test_dcto_keeps_bleeding_past_the_watchdog_then_stops():
    c = Chip()
    c.afe.wake()
    c.afe.dcto = ltc6811.dcto_code(30)
    c.afe.set_discharge(0b10)
    c.wait(2500)
    assert c.model.asleep
    assert c.model.discharge_mask == 0b10  # the discharge timer runs in sleep
    c.wait(28_000)
    assert c.model.discharge_mask == 0  # ... and ends by itself at 30 s


def test_sleep_loses_commands_until_woken():
    c = Chip()
    assert c.model.asleep
    c.afe.start_cells()  # lost: the chip was asleep (CS activity only starts its wake-up)
    buf = [0] * 12
    with pytest.raises(PECError):
        c.afe.read_cells_into(buf)  # still waking: nothing answers
    c.wait(ltc6811.conversion_ms())
    assert c.afe.read_cells_into(buf) == 0xFFF  # awake now, but the conversion never ran
    assert c.model.wakeups == 1
    c.afe.wake()
    c.afe.start_cells()
    c.wait(ltc6811.conversion_ms())
    assert c.afe.read_cells_into(buf) == 0


def test_aux_reads_thermistor_divider_and_reference():
    c = Chip()
    c.model.ntc_temp_dc = [250, None]
    c.afe.wake()
    c.afe.start_aux()
    c.wait(ltc6811.conversion_ms(kind="aux"))
    aux = [0] * 6
    assert c.afe.read_aux_into(aux) == 0
    assert aux[0] == (ntc_gpio_uv(250) + 50) // 100  # 1.5 V: half of VREF2 at 25 C
    assert aux[1] == 30000  # no thermistor: the pull-up holds it at VREF2
    assert aux[5] == 30000


def test_status_sum_and_die_temperature():
    c = Chip()
    c.model.die_temp_dc = 412
    c.afe.wake()
    c.afe.start_status()
    c.wait(ltc6811.conversion_ms(kind="status"))
    assert c.afe.read_status()
    assert abs(c.afe.sum_cells_mv - sum(c.cells_uv) // 1000) <= 2
    assert abs(c.afe.die_temp_dc - 412) <= 1


def _open_wire(c, count=12):
    pu = [0] * 12
    pd = [0] * 12
    for pull, buf in ((True, pu), (False, pd)):
        for _ in range(2):
            c.afe.start_open_wire(pull)
            c.wait(ltc6811.conversion_ms(kind="open_wire"))
        c.afe.read_cells_into(buf)
    return open_lines(pu, pd, count)


@pytest.mark.parametrize("line", [0, 1, 5, 11, 12])
def test_open_wire_sequence_names_the_open_line(line):
    c = Chip()
    c.afe.wake()
    assert _open_wire(c) == 0
    c.model.open_wire(line, True)
    assert _open_wire(c) == 1 << line


def test_open_wire_top_line_of_a_7_cell_module():
    cells = [3_300_000] * 7 + [0] * 5  # C7..C12 tied together on the board
    c = Chip(cells)
    c.afe.wake()
    assert _open_wire(c, 7) == 0
    c.model.open_wire(7, True)
    assert _open_wire(c, 7) == 1 << 7
