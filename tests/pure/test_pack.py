"""Pack picture: pack order, statistics, unknown stays unknown, absent sensors. Runs on MicroPython."""

from bms_packet import FLAG_SAMPLE_STALE as FLAG_STALE
from pack import NTC_TABLE, TEMP_ABSENT, UNKNOWN, Pack, ntc_temp_dc
from upy_check import raises


def cells(n, mv):
    return [mv * 10] * n


def fill(p, counts, mv=3300, temps=(250, 260)):
    p.begin()
    for m in range(len(counts)):
        p.set_module(m, cells(12, mv), 0, counts[m], list(temps), 0, 2)
    p.set_fet_temp(300)
    p.finish()


def test_eight_modules_96_cells_in_pack_order():
    p = Pack()
    p.configure([12] * 8)
    p.begin()
    for m in range(8):
        c = [33000 + 10 * (m * 12 + i) for i in range(12)]  # 3300 mV rising by 1 mV per cell
        p.set_module(m, c, 0, 12, [250, TEMP_ABSENT], 0, 2)
    p.finish()
    assert p.n_cells == 96 and p.known_cells == 96
    assert p.cells_mv[0] == 3300 and p.cells_mv[95] == 3395
    assert p.min_mv == 3300 and p.min_cell == 1 and p.max_mv == 3395 and p.max_cell == 96
    assert p.spread_mv == 95
    assert p.total_mv == sum(range(3300, 3396))
    assert p.avg_mv == (p.total_mv + 48) // 96


def test_uneven_modules_keep_positions():
    p = Pack()
    p.configure([4, 12, 7])
    p.begin()
    p.set_module(0, [31000] * 12, 0, 4)
    p.set_module(1, [32000] * 12, 0, 12)
    p.set_module(2, [33000] * 11 + [35000], 0, 12)  # a 13th reading beyond the cell count is ignored
    p.finish()
    assert p.n_cells == 23
    assert p.cells_mv[3] == 3100 and p.cells_mv[4] == 3200 and p.cells_mv[16] == 3300
    assert p.max_mv == 3300


def test_missing_module_cells_unknown_not_zero_not_last_value():
    p = Pack()
    p.configure([12] * 8)
    fill(p, [12] * 8)
    p.begin()
    for m in range(8):
        if m != 3:
            p.set_module(m, cells(12, 3300), 0, 12, [250, 250], 0, 2)
    p.finish()
    for i in range(36, 48):
        assert p.cells_mv[i] == UNKNOWN
    assert p.missing_count == 1 and p.first_missing == 4
    assert p.total_mv == UNKNOWN  # a total over a partial pack would look fine and be wrong
    assert p.known_cells == 84 and p.min_mv == 3300
    assert p.sensor_state(6) == "unknown"


def test_unknown_cell_reading_and_stale_answer():
    p = Pack()
    p.configure([12, 12])
    p.begin()
    c = cells(12, 3300)
    c[5] = 0xFFFF
    p.set_module(0, c, 0, 12)
    p.set_module(1, cells(12, 3300), 0, 12, flags=FLAG_STALE)
    p.finish()
    assert p.cells_mv[5] == UNKNOWN
    assert p.cells_mv[12] == UNKNOWN
    assert p.missing_count == 2


def test_absent_temperature_sensor_is_absent_not_zero():
    p = Pack()
    p.configure([12, 12])
    p.begin()
    p.set_module(0, cells(12, 3300), 0, 12, [TEMP_ABSENT, TEMP_ABSENT], 0, 2)
    p.set_module(1, cells(12, 3300), 0, 12, [-55, TEMP_ABSENT], 0, 2)
    p.set_fet_temp(TEMP_ABSENT)
    p.finish()
    assert p.sensor_state(0) == "absent" and p.module_temp_dc[0] == UNKNOWN
    assert p.temp_min_dc == -55 and p.temp_max_dc == -55 and p.temp_max_sensor == 3
    assert p.fet_temp_dc == UNKNOWN
    assert p.missing_count == 0


def test_open_wire_and_wiring_counts():
    p = Pack()
    p.configure([12, 12])
    p.begin()
    p.set_module(0, cells(12, 3300), 0, 12, open_wire=0b101)
    p.set_module(1, cells(12, 3300), 0, 12, wiring=0b1)
    p.finish()
    assert p.open_wire_count == 2 and p.wiring_count == 1


def test_configure_refuses_too_many():
    raises(ValueError, Pack().configure, [12] * 9)
    raises(ValueError, Pack().configure, [13])


def test_ntc_table_points_and_faults():
    for raw, dc in NTC_TABLE:
        assert ntc_temp_dc(raw) == dc
    mid = (NTC_TABLE[8][0] + NTC_TABLE[9][0]) // 2  # between 0 and 5 degC
    assert 0 < ntc_temp_dc(mid) < 50
    assert ntc_temp_dc(65535) == UNKNOWN  # unplugged
    assert ntc_temp_dc(0) == UNKNOWN  # shorted
