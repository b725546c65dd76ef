"""The chip model's byte-table PEC is the datasheet's bit-serial CRC-15 (the rig checks every PEC with it)."""

from hypothesis import given
from hypothesis import strategies as st

from hil.ltc6811_model import pec15, pec15_bitwise


def test_datasheet_vector():
    assert pec15(b"\x00\x01") == 0x3D6E == pec15_bitwise(b"\x00\x01")


@given(st.binary(max_size=40))
def test_table_pec_equals_bit_serial(data):
    assert pec15(data) == pec15_bitwise(data)
