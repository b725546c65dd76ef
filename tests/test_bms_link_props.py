"""Property tests of the link codec (CPython only: hypothesis)."""

from hypothesis import given
from hypothesis import strategies as st

from bms_link import cobs_decode, cobs_encode, cobs_max_len, crc16_ccitt


@given(st.binary(max_size=1200))
def test_cobs_round_trip(data):
    enc = cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= cobs_max_len(len(data))
    assert cobs_decode(enc) == data


@given(st.binary(max_size=300))
def test_cobs_decode_never_raises_anything_but_valueerror(data):
    try:
        cobs_decode(data)
    except ValueError:
        pass


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=0, max_value=511))
def test_crc_detects_any_single_bit_flip(data, pos):
    bit = pos % (len(data) * 8)
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert crc16_ccitt(flipped) != crc16_ccitt(data)


def _crc16_bitwise(data, crc=0xFFFF):
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


@given(st.binary(max_size=80), st.integers(min_value=0, max_value=0xFFFF))
def test_table_crc_equals_the_bit_serial_definition(data, init):
    assert crc16_ccitt(data, init) == _crc16_bitwise(data, init)
