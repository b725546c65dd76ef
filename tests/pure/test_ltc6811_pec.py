"""LTC6811 PEC and command bytes against the datasheet (module_fw/lib/ltc6811.py). Runs on MicroPython too."""

from ltc6811 import CELL_UNKNOWN, adcv_code, dcto_code, open_lines, pec15


def test_datasheet_vector_00_01():
    assert pec15(b"\x00\x01") == 0x3D6E


def test_command_pecs_from_the_datasheet_command_table():
    assert pec15(b"\x00\x01") == 0x3D6E  # WRCFGA
    assert pec15(b"\x00\x02") == 0x2B0A  # RDCFGA
    assert pec15(b"\x00\x04") == 0x07C2  # RDCVA
    assert pec15(b"\x03\x60") == 0xF46C  # ADCV MD=10 DCP=0 CH=000


def test_adcv_code_normal_all_cells_dcp0():
    assert adcv_code(2, False, 0) == 0x360
    assert adcv_code(2, True, 0) == 0x370
    assert adcv_code(1, False, 0) == 0x2E0


def test_pec_is_even_and_15_bit():
    for data in (b"", b"\xff", b"\x12\x34\x56\x78\x9a\xbc"):
        p = pec15(data)
        assert p & 1 == 0 and p <= 0xFFFE


def test_pec_slice():
    assert pec15(b"xx\x00\x01yy", 2, 4) == 0x3D6E


def test_pec_detects_any_single_bit_flip_in_a_group():
    data = bytearray(b"\x10\x27\x20\x4e\x30\x75")
    good = pec15(data)
    for i in range(6):
        for b in range(8):
            data[i] ^= 1 << b
            assert pec15(data) != good
            data[i] ^= 1 << b


def test_dcto_code_rounds_up():
    assert dcto_code(0) == 0
    assert dcto_code(1) == 1  # 0.5 min
    assert dcto_code(30) == 1
    assert dcto_code(31) == 2
    assert dcto_code(99999) == 15


def test_open_lines_datasheet_rule():
    good = [33000] * 12
    assert open_lines(good, good, 12) == 0
    pu = list(good)
    pd = list(good)
    # C3 open: cell 4 (index 3) reads far lower with pull-up than with pull-down.
    pu[3] = 0
    pd[3] = 66000
    pu[2] = 66000
    pd[2] = 0
    assert open_lines(pu, pd, 12) == 1 << 3
    # C0: pull-up reading of cell 1 is 0 V; C12: pull-down reading of cell 12 is 0 V.
    pu = list(good)
    pd = list(good)
    pu[0] = 0
    pd[11] = 0
    assert open_lines(pu, pd, 12) == (1 << 0) | (1 << 12)


def test_open_lines_top_of_a_short_module():
    pu = [33000] * 7 + [0] * 5
    pd = list(pu)
    assert open_lines(pu, pd, 7) == 0
    pd[6] = 0
    assert open_lines(pu, pd, 7) == 1 << 7


def test_unknown_readings_are_not_open_lines():
    pu = [33000] * 12
    pd = [33000] * 12
    pu[5] = CELL_UNKNOWN
    assert open_lines(pu, pd, 12) == 0
