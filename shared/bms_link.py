"""
`bms_link`
================================================================================

Byte-level codec of the cascade link (protocol v1, see ``docs/protocol.md``):
CRC-16/CCITT-FALSE over a decoded packet and COBS framing with a 0x00 delimiter.

Pure Python: runs unchanged on CircuitPython, MicroPython and CPython.
The ``*_into`` variants write into a caller's buffer and return a length, so the
steady-state loop of a board allocates nothing.
"""

from array import array

CRC16_INIT = 0xFFFF


def _crc16_table():
    # 256 x 16-bit remainders, built once at import: 512 bytes of RAM buy an 8x faster CRC than bit by bit,
    # which matters at 250 000 baud on a relaying module (every byte is checked once per hop).
    t = array("H", bytes(512))
    for b in range(256):
        crc = b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        t[b] = crc
    return t


_CRC16_TABLE = _crc16_table()


def cobs_max_len(n: int) -> int:
    """Largest COBS encoding of ``n`` data bytes (without the 0x00 delimiter).

    One code byte per 254 data bytes, plus the leading code byte.
    """
    return n + n // 254 + 1


def crc16_ccitt(data, crc: int = CRC16_INIT, start: int = 0, end: int = -1) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xor-out).

    ``start``/``end`` select a slice without copying (``end=-1`` means the whole buffer).
    The check value of ``b"123456789"`` is 0x29B1.
    """
    if end < 0:
        end = len(data)
    table = _CRC16_TABLE
    for i in range(start, end):
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ data[i]]
    return crc


def cobs_encode_into(data, out, n: int = -1) -> int:
    """COBS-encode the first ``n`` bytes of ``data`` (all when -1) into ``out``.

    Writes no trailing 0x00 delimiter. Returns the encoded length.
    Raises ``ValueError`` if ``out`` is too small.
    """
    if n < 0:
        n = len(data)
    if len(out) < cobs_max_len(n):
        raise ValueError("cobs: output buffer too small")
    code_idx = 0
    o = 1
    code = 1
    for i in range(n):
        b = data[i]
        if b == 0:
            out[code_idx] = code
            code_idx = o
            o += 1
            code = 1
        else:
            out[o] = b
            o += 1
            code += 1
            if code == 0xFF:
                out[code_idx] = code
                code_idx = o
                o += 1
                code = 1
    out[code_idx] = code
    return o


def cobs_decode_into(data, out, n: int = -1) -> int:
    """Decode the first ``n`` bytes of a COBS block (no delimiter) into ``out``.

    Returns the decoded length. Raises ``ValueError`` on a zero byte, a code that
    runs past the end, or an ``out`` buffer that is too small.
    """
    if n < 0:
        n = len(data)
    if n == 0:
        raise ValueError("cobs: empty block")
    i = 0
    o = 0
    cap = len(out)
    while i < n:
        code = data[i]
        if code == 0:
            raise ValueError("cobs: zero byte inside block")
        end = i + code
        if end > n:
            raise ValueError("cobs: code runs past end")
        i += 1
        while i < end:
            b = data[i]
            if b == 0:
                raise ValueError("cobs: zero byte inside block")
            if o >= cap:
                raise ValueError("cobs: output buffer too small")
            out[o] = b
            o += 1
            i += 1
        if code != 0xFF and i < n:
            if o >= cap:
                raise ValueError("cobs: output buffer too small")
            out[o] = 0
            o += 1
    return o


def cobs_encode(data) -> bytes:
    """COBS-encode ``data``; the result holds no 0x00 (append one to frame it)."""
    out = bytearray(cobs_max_len(len(data)))
    n = cobs_encode_into(data, out)
    return bytes(out[:n])


def cobs_decode(data) -> bytes:
    """Decode one COBS block (without its 0x00 delimiter). Raises ``ValueError`` if malformed."""
    out = bytearray(len(data))
    n = cobs_decode_into(data, out)
    return bytes(out[:n])
