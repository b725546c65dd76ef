"""CRC-16/CCITT-FALSE and COBS of the cascade link (docs/protocol.md §1). Runs on MicroPython too."""

from bms_link import (
    cobs_decode,
    cobs_decode_into,
    cobs_encode,
    cobs_encode_into,
    cobs_max_len,
    crc16_ccitt,
)
from upy_check import raises


def test_crc_check_value():
    assert crc16_ccitt(b"123456789") == 0x29B1


def test_crc_of_empty_is_init():
    assert crc16_ccitt(b"") == 0xFFFF


def test_crc_slice_equals_crc_of_copy():
    data = b"xx123456789yy"
    assert crc16_ccitt(data, start=2, end=11) == 0x29B1


def test_crc_chains():
    assert crc16_ccitt(b"6789", crc16_ccitt(b"12345")) == 0x29B1


def test_crc_detects_single_bit_flip():
    data = bytearray(b"123456789")
    for i in range(len(data)):
        for bit in range(8):
            data[i] ^= 1 << bit
            assert crc16_ccitt(data) != 0x29B1
            data[i] ^= 1 << bit


# Vectors from docs/protocol.md §1 (the Wikipedia COBS examples).
VECTORS = (
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
)


def test_cobs_vectors_encode():
    for raw, enc in VECTORS:
        assert cobs_encode(raw) == enc, raw


def test_cobs_vectors_decode():
    for raw, enc in VECTORS:
        assert cobs_decode(enc) == raw, enc


def test_cobs_254_nonzero_bytes():
    raw = bytes(range(1, 255))
    enc = cobs_encode(raw)
    assert enc == b"\xff" + raw + b"\x01"
    assert cobs_decode(enc) == raw


def test_cobs_255_nonzero_bytes():
    raw = bytes(range(1, 256))
    enc = cobs_encode(raw)
    assert enc == b"\xff" + bytes(range(1, 255)) + b"\x02\xff"
    assert cobs_decode(enc) == raw


def test_cobs_output_has_no_zero():
    raw = bytes(range(256)) * 2
    enc = cobs_encode(raw)
    assert 0 not in enc
    assert len(enc) <= cobs_max_len(len(raw))
    assert cobs_decode(enc) == raw


def test_cobs_decode_rejects_malformed():
    raises(ValueError, cobs_decode, b"")
    raises(ValueError, cobs_decode, b"\x05\x11\x22")  # code runs past the end
    raises(ValueError, cobs_decode, b"\x03\x11\x00")  # zero inside the block
    raises(ValueError, cobs_decode, b"\x00")


def test_into_variants_use_callers_buffer():
    out = bytearray(16)
    n = cobs_encode_into(b"\x11\x22\x00\x33", out)
    assert bytes(out[:n]) == b"\x03\x11\x22\x02\x33"
    back = bytearray(16)
    m = cobs_decode_into(out, back, n)
    assert bytes(back[:m]) == b"\x11\x22\x00\x33"


def test_into_refuses_small_buffer():
    raises(ValueError, cobs_encode_into, b"\x11\x22\x33", bytearray(3))
    raises(ValueError, cobs_decode_into, b"\x05\x11\x22\x33\x44", bytearray(3))
