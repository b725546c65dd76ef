"""
`bms_packet`
================================================================================

Packet layer of the cascade link (protocol v1, ``docs/protocol.md``): the message type constants, the
packet header, allocation-free payload pack/unpack helpers for every message of the table, packet build
into a caller's buffer (COBS + 0x00 delimiter) and a streaming decoder that resynchronises after any error.

Decoded packet: ``dst u8, src u8, type u8, seq u8, len u8, payload[len], crc16 u16 LE`` (CRC-16/CCITT-FALSE
over everything before it). Pure Python: runs on CircuitPython, MicroPython and CPython.

Public interface (stable):

* ``PacketWriter()``: ``.payload`` (memoryview to fill with a ``pack_*_into(w.payload, 0, ...)`` helper),
  ``finish(dst, src, ptype, seq, plen) -> int`` frames it into ``.frame`` and returns the framed length
  (``.frame_mv[:n]`` is what goes on the wire, delimiter included).
* ``PacketDecoder()``: ``feed(data, start=0, end=-1) -> int`` consumes bytes until one packet is complete
  (``.ready`` is then True and ``dst, src, type, seq, length, payload, buf, frame, frame_len`` describe it
  until the next ``feed``) or the input ends; returns the index of the first byte not consumed. Counters:
  ``packets``, ``crc_errors``, ``framing_errors``, ``overruns``; ``wake_seen`` after a run of 0x00 bytes.
* ``build_into(out, dst, src, ptype, seq, payload=b"", plen=-1) -> int`` and ``build_frame(...) -> bytes``;
  ``parse_frame(frame) -> (dst, src, ptype, seq, payload)`` (raises ``ValueError``) for tests and tools.
"""

from bms_link import crc16_ccitt, cobs_encode_into, cobs_decode_into, cobs_max_len
from micropython import const  # on a PC, Blinka provides it

try:
    from typing import Optional, Tuple  # noqa: F401
except ImportError:
    pass

PROTO_VERSION = const(1)

# Addresses
ADDR_HOST = const(0x00)
ADDR_BROADCAST = const(0xFF)
ADDR_MAX_MODULE = const(0xFE)

# Message types (requests); a reply is ``type | REPLY`` and echoes ``seq``.
ENUMERATE = const(0x01)
PING = const(0x02)
SAMPLE = const(0x03)
GET_CELLS = const(0x04)
GET_TEMPS = const(0x05)
GET_STATUS = const(0x06)
CONFIG = const(0x07)
BALANCE = const(0x08)
SLEEP = const(0x09)
IDENTIFY = const(0x0A)
COLLECT = const(0x0B)  # expanded by the module link into GET_CELLS/GET_TEMPS/GET_STATUS (docs/protocol.md §3)
NACK = const(0x7F)
REPLY = const(0x80)
ENUMERATED = const(0x81)
PONG = const(0x82)
CELLS = const(0x84)
TEMPS = const(0x85)
STATUS = const(0x86)
CONFIG_ACK = const(0x87)
BALANCE_ACK = const(0x88)
IDENTITY = const(0x8A)

# NACK reasons
NACK_BAD_LENGTH = const(1)
NACK_BAD_VALUE = const(2)
NACK_UNKNOWN_TYPE = const(3)
NACK_NOT_READY = const(4)
NACK_AFE_FAULT = const(5)

# COLLECT ``what`` bits (which answers are wanted)
WHAT_CELLS = const(0x01)
WHAT_TEMPS = const(0x02)
WHAT_STATUS = const(0x04)
WHAT_ALL = const(0x07)

# STATUS flags bits
FLAG_AFE_FAULT = const(0x0001)
FLAG_WIRING = const(0x0002)
FLAG_OPEN_WIRE = const(0x0004)
FLAG_HEAT_WARN = const(0x0008)
FLAG_HEAT_LIMIT = const(0x0010)
FLAG_BALANCING = const(0x0020)
FLAG_NOT_CONFIGURED = const(0x0040)
FLAG_SAMPLE_STALE = const(0x0080)
FLAG_TEMP_ABSENT = const(0x0100)

# Sentinels on the wire
CELL_UNKNOWN = const(0xFFFF)
TEMP_ABSENT = const(-32768)

# Sizes
HEADER_LEN = const(5)  # dst, src, type, seq, len
CRC_LEN = const(2)
PAYLOAD_OFFSET = const(5)
MAX_CELLS = const(16)  # per module on the wire (the LTC6811 has 12)
MAX_TEMPS = const(8)
MAX_PAYLOAD = const(36)  # CELLS with 16 cells: 2 + 32
MAX_PACKET = const(43)  # HEADER_LEN + MAX_PAYLOAD + CRC_LEN
MAX_FRAME = const(45)  # COBS(MAX_PACKET) + 0x00 (one code byte per 254 data bytes)
WAKE_LEN = const(16)  # 0x00 bytes of a wake preamble (line low for 9 of every 10 bit times)
WAKE_MIN_ZEROS = const(4)  # a run this long on a link is a wake preamble, not idle delimiters

# Fixed payload lengths (variable ones: CELLS 2 + 2n, TEMPS 4 + 2n)
ENUMERATE_LEN = const(1)
ENUMERATED_LEN = const(6)
SAMPLE_LEN = const(1)
STATUS_LEN = const(13)
CONFIG_LEN = const(9)
BALANCE_LEN = const(4)
BALANCE_ACK_LEN = const(2)
IDENTITY_LEN = const(8)
NACK_LEN = const(2)


# --- little-endian field access (no allocation) -------------------------------------------------


def put_u16(buf, off: int, v: int) -> None:
    buf[off] = v & 0xFF
    buf[off + 1] = (v >> 8) & 0xFF


def put_i16(buf, off: int, v: int) -> None:
    put_u16(buf, off, v & 0xFFFF)


def get_u16(buf, off: int) -> int:
    return buf[off] | (buf[off + 1] << 8)


def get_i16(buf, off: int) -> int:
    v = buf[off] | (buf[off + 1] << 8)
    return v - 0x10000 if v & 0x8000 else v


def put_u32(buf, off: int, v: int) -> None:
    put_u16(buf, off, v & 0xFFFF)
    put_u16(buf, off + 2, (v >> 16) & 0xFFFF)


def get_u32(buf, off: int) -> int:
    return get_u16(buf, off) | (get_u16(buf, off + 2) << 16)


# --- payload pack helpers: write into ``buf`` at ``off``, return the payload length ---------------


def pack_enumerate_into(buf, off: int, hop: int) -> int:
    buf[off] = hop & 0xFF
    return ENUMERATE_LEN


def pack_enumerated_into(buf, off: int, addr: int, channels: int, cell_count: int, fw_major: int, fw_minor: int) -> int:
    buf[off] = addr
    buf[off + 1] = channels
    buf[off + 2] = cell_count
    buf[off + 3] = PROTO_VERSION
    buf[off + 4] = fw_major
    buf[off + 5] = fw_minor
    return ENUMERATED_LEN


def pack_sample_into(buf, off: int, sample_id: int) -> int:
    buf[off] = sample_id & 0xFF
    return SAMPLE_LEN


def pack_collect_into(buf, off: int, what: int, selected=None, n_modules: int = 0) -> int:
    """COLLECT: ``what u8`` then, when ``selected`` is given, an address bitmap of ``ceil(n_modules / 8)``
    bytes (bit ``(a - 1) % 8`` of byte ``(a - 1) // 8`` set = module ``a`` answers; ``selected[a]`` truthy).
    Without a bitmap every module answers.
    """
    buf[off] = what
    if selected is None or n_modules <= 0:
        return 1
    nb = (n_modules + 7) // 8
    if 1 + nb > MAX_PAYLOAD:
        raise ValueError("collect: too many modules")
    for k in range(nb):
        buf[off + 1 + k] = 0
    for a in range(1, n_modules + 1):
        if selected[a]:
            buf[off + 1 + (a - 1) // 8] |= 1 << ((a - 1) % 8)
    return 1 + nb


def collect_selects(buf, off: int, plen: int, addr: int) -> bool:
    """Whether a COLLECT payload asks module ``addr`` to answer."""
    if plen <= 1:
        return plen == 1
    k = (addr - 1) // 8
    if addr < 1 or 1 + k >= plen:
        return False
    return bool(buf[off + 1 + k] & (1 << ((addr - 1) % 8)))


def pack_cells_into(buf, off: int, sample_id: int, cells_100uv, n: int) -> int:
    """CELLS: ``sample_id u8, n u8, cell_100uv u16 x n`` (0xFFFF = unknown)."""
    if n < 0 or n > MAX_CELLS:
        raise ValueError("cells: n out of range")
    buf[off] = sample_id & 0xFF
    buf[off + 1] = n
    o = off + 2
    for i in range(n):
        put_u16(buf, o, cells_100uv[i])
        o += 2
    return 2 + 2 * n


def pack_temps_into(buf, off: int, sample_id: int, temps_dc, n: int, die_temp_dc: int) -> int:
    """TEMPS: ``sample_id u8, n u8, temp_dc i16 x n, die_temp_dc i16`` (-32768 = absent)."""
    if n < 0 or n > MAX_TEMPS:
        raise ValueError("temps: n out of range")
    buf[off] = sample_id & 0xFF
    buf[off + 1] = n
    o = off + 2
    for i in range(n):
        put_i16(buf, o, temps_dc[i])
        o += 2
    put_i16(buf, o, die_temp_dc)
    return 4 + 2 * n


def pack_status_into(
    buf, off: int, flags: int, open_wire: int, balance: int, wiring: int, pec_errors: int, link_errors: int,
    cell_count: int,
) -> int:
    put_u16(buf, off, flags)
    put_u16(buf, off + 2, open_wire)
    put_u16(buf, off + 4, balance)
    put_u16(buf, off + 6, wiring)
    put_u16(buf, off + 8, min(pec_errors, 0xFFFF))
    put_u16(buf, off + 10, min(link_errors, 0xFFFF))
    buf[off + 12] = cell_count
    return STATUS_LEN


def pack_config_into(
    buf, off: int, cell_count: int, ow_period_s: int, silence_ms: int, temp_warn_dc: int, temp_limit_dc: int
) -> int:
    buf[off] = cell_count
    put_u16(buf, off + 1, ow_period_s)
    put_u16(buf, off + 3, silence_ms)
    put_i16(buf, off + 5, temp_warn_dc)
    put_i16(buf, off + 7, temp_limit_dc)
    return CONFIG_LEN


def pack_balance_into(buf, off: int, target_100uv: int, timeout_s: int) -> int:
    put_u16(buf, off, target_100uv)
    put_u16(buf, off + 2, timeout_s)
    return BALANCE_LEN


def pack_balance_ack_into(buf, off: int, balance: int) -> int:
    put_u16(buf, off, balance)
    return BALANCE_ACK_LEN


def pack_identity_into(buf, off: int, fw_major: int, fw_minor: int, channels: int, uid: int) -> int:
    buf[off] = PROTO_VERSION
    buf[off + 1] = fw_major
    buf[off + 2] = fw_minor
    buf[off + 3] = channels
    put_u32(buf, off + 4, uid)
    return IDENTITY_LEN


def pack_nack_into(buf, off: int, req_type: int, reason: int) -> int:
    buf[off] = req_type
    buf[off + 1] = reason
    return NACK_LEN


# --- payload unpack helpers (validate the length; no allocation unless they return a tuple) -------


def _item_count(buf, off: int, plen: int, fixed: int, max_n: int) -> int:
    # ``sample_id u8, n u8, n x 16-bit, (fixed - 2) more bytes``: n, or -1 when the length does not match
    if plen < fixed:
        return -1
    n = buf[off + 1]
    if n > max_n or plen != fixed + 2 * n:
        return -1
    return n


def _copy_words(buf, off: int, n: int, out, out_off: int, signed: bool) -> int:
    o = off + 2
    for i in range(n):
        out[out_off + i] = get_i16(buf, o) if signed else get_u16(buf, o)
        o += 2
    return n


def cells_count(buf, off: int, plen: int) -> int:
    """Cell count of a CELLS payload, or -1 if its length does not match."""
    return _item_count(buf, off, plen, 2, MAX_CELLS)


def unpack_cells_into(buf, off: int, plen: int, out_100uv, out_off: int = 0) -> int:
    """Copy a CELLS payload's values into ``out_100uv[out_off:]``; returns n, or -1 on a bad length.

    The sample id is ``buf[off]``.
    """
    return _copy_words(buf, off, cells_count(buf, off, plen), out_100uv, out_off, False)


def temps_count(buf, off: int, plen: int) -> int:
    """Sensor count of a TEMPS payload, or -1 if its length does not match."""
    return _item_count(buf, off, plen, 4, MAX_TEMPS)


def unpack_temps_into(buf, off: int, plen: int, out_dc, out_off: int = 0) -> int:
    """Copy a TEMPS payload's sensor values into ``out_dc[out_off:]``; returns n or -1.

    The die temperature is ``get_i16(buf, off + 2 + 2 * n)``, the sample id ``buf[off]``.
    """
    return _copy_words(buf, off, temps_count(buf, off, plen), out_dc, out_off, True)


def unpack_enumerated(buf, off: int) -> tuple:
    """(addr, channels, cell_count, proto, fw_major, fw_minor)."""
    return (buf[off], buf[off + 1], buf[off + 2], buf[off + 3], buf[off + 4], buf[off + 5])


def unpack_status(buf, off: int) -> tuple:
    """(flags, open_wire, balance, wiring, pec_errors, link_errors, cell_count)."""
    return (
        get_u16(buf, off),
        get_u16(buf, off + 2),
        get_u16(buf, off + 4),
        get_u16(buf, off + 6),
        get_u16(buf, off + 8),
        get_u16(buf, off + 10),
        buf[off + 12],
    )


def unpack_config(buf, off: int) -> tuple:
    """(cell_count, ow_period_s, silence_ms, temp_warn_dc, temp_limit_dc)."""
    return (buf[off], get_u16(buf, off + 1), get_u16(buf, off + 3), get_i16(buf, off + 5), get_i16(buf, off + 7))


def unpack_balance(buf, off: int) -> tuple:
    """(target_100uv, timeout_s)."""
    return (get_u16(buf, off), get_u16(buf, off + 2))


def unpack_identity(buf, off: int) -> tuple:
    """(proto, fw_major, fw_minor, channels, uid)."""
    return (buf[off], buf[off + 1], buf[off + 2], buf[off + 3], get_u32(buf, off + 4))


# --- packet build --------------------------------------------------------------------------------


class PacketWriter:
    """A reusable transmit buffer: fill ``payload`` (a pack helper with offset 0), then ``finish``."""

    def __init__(self) -> None:
        self.buf = bytearray(MAX_PACKET)
        self.payload = memoryview(self.buf)[PAYLOAD_OFFSET : PAYLOAD_OFFSET + MAX_PAYLOAD]
        self.frame = bytearray(MAX_FRAME)
        self.frame_mv = memoryview(self.frame)

    def finish(self, dst: int, src: int, ptype: int, seq: int, plen: int) -> int:
        """Write the header and CRC around ``plen`` payload bytes, COBS-frame them; return the framed length."""
        if plen < 0 or plen > MAX_PAYLOAD:
            raise ValueError("packet: payload too long")
        b = self.buf
        b[0] = dst & 0xFF
        b[1] = src & 0xFF
        b[2] = ptype & 0xFF
        b[3] = seq & 0xFF
        b[4] = plen
        n = HEADER_LEN + plen
        crc = crc16_ccitt(b, 0xFFFF, 0, n)
        b[n] = crc & 0xFF
        b[n + 1] = crc >> 8
        m = cobs_encode_into(b, self.frame, n + CRC_LEN)
        self.frame[m] = 0
        return m + 1


_scratch = PacketWriter()


def build_into(out, dst: int, src: int, ptype: int, seq: int, payload=b"", plen: int = -1) -> int:
    """Frame a packet (COBS + 0x00) into ``out``; returns the framed length.

    ``payload`` is copied from its first ``plen`` bytes (all when -1). Raises ``ValueError`` if it does not fit.
    """
    if plen < 0:
        plen = len(payload)
    if plen > MAX_PAYLOAD:
        raise ValueError("packet: payload too long")
    w = _scratch
    for i in range(plen):
        w.buf[PAYLOAD_OFFSET + i] = payload[i]
    n = w.finish(dst, src, ptype, seq, plen)
    if len(out) < n:
        raise ValueError("packet: output buffer too small")
    for i in range(n):
        out[i] = w.frame[i]
    return n


def build_frame(dst: int, src: int, ptype: int, seq: int, payload=b"") -> bytes:
    """Convenience (allocates): the framed packet as bytes, delimiter included."""
    out = bytearray(MAX_FRAME)
    n = build_into(out, dst, src, ptype, seq, payload)
    return bytes(out[:n])


def parse_frame(frame) -> tuple:
    """Convenience (allocates): ``(dst, src, ptype, seq, payload)`` of one frame (with or without its 0x00).

    Raises ``ValueError`` with the reason on a bad COBS block, a bad length or a bad CRC.
    """
    n = len(frame)
    if n and frame[n - 1] == 0:
        n -= 1
    raw = bytearray(cobs_max_len(n))
    m = cobs_decode_into(frame, raw, n)
    if m < HEADER_LEN + CRC_LEN:
        raise ValueError("packet: too short")
    plen = raw[4]
    if HEADER_LEN + plen + CRC_LEN != m:
        raise ValueError("packet: length field does not match")
    if crc16_ccitt(raw, 0xFFFF, 0, m - CRC_LEN) != get_u16(raw, m - CRC_LEN):
        raise ValueError("packet: bad CRC")
    return (raw[0], raw[1], raw[2], raw[3], bytes(raw[HEADER_LEN : HEADER_LEN + plen]))


# --- streaming decoder ---------------------------------------------------------------------------


class PacketDecoder:
    """Streaming frame decoder: feed it any chunks; it yields whole, CRC-checked packets one at a time.

    Decodes COBS on the fly into a fixed buffer and keeps the raw frame (so a relay can forward it
    verbatim). Any error (bad COBS code, truncated block, over-long frame, length mismatch, bad CRC) drops
    the frame, counts it and resynchronises at the next 0x00. Never raises on input bytes; allocates nothing.
    """

    def __init__(self) -> None:
        self.buf = bytearray(MAX_PACKET + 1)
        self.payload = memoryview(self.buf)[PAYLOAD_OFFSET : PAYLOAD_OFFSET + MAX_PAYLOAD]
        self.frame = bytearray(MAX_FRAME)
        self.frame_len = 0  # framed length of the ready packet, delimiter included
        self.ready = False
        self.dst = 0
        self.src = 0
        self.type = 0
        self.seq = 0
        self.length = 0
        self.packets = 0
        self.crc_errors = 0
        self.framing_errors = 0
        self.overruns = 0
        self.wake_seen = False
        self._zeros = 0
        self._reset()

    def _reset(self) -> None:
        self._fn = 0  # raw frame bytes so far
        self._n = 0  # decoded bytes so far
        self._rem = 0  # data bytes left in the current COBS block
        self._pend0 = False  # a 0x00 is owed before the next block
        self._skip = False  # discarding an over-long or broken frame up to the next 0x00

    @property
    def errors(self) -> int:
        return self.crc_errors + self.framing_errors + self.overruns

    def reset(self) -> None:
        """Forget a partial frame (e.g. after the link was reset); counters are kept."""
        self._reset()
        self.ready = False

    def feed(self, data, start: int = 0, end: int = -1) -> int:
        """Consume ``data[start:end]`` until one packet completes; return the index of the next byte.

        After the call ``ready`` says whether a packet is available (valid until the next ``feed``).
        Call again from the returned index until it equals ``end``.
        """
        if end < 0:
            end = len(data)
        self.ready = False
        i = start
        frame = self.frame
        buf = self.buf
        while i < end:
            b = data[i]
            i += 1
            if b == 0:
                if self._fn == 0:
                    self._zeros += 1
                    if self._zeros == WAKE_MIN_ZEROS:  # once per run, however it is chunked
                        self.wake_seen = True
                    continue
                self._zeros = 1
                if self._finish():
                    return i
                continue
            self._zeros = 0
            if self._skip:
                continue
            if self._fn >= MAX_FRAME - 1:
                self.overruns += 1
                self._skip = True
                self._fn = 1  # remember that a frame is in progress
                continue
            frame[self._fn] = b
            self._fn += 1
            if self._rem == 0:
                if self._pend0:
                    if self._n >= MAX_PACKET:
                        self.overruns += 1
                        self._skip = True
                        continue
                    buf[self._n] = 0
                    self._n += 1
                self._rem = b - 1
                self._pend0 = b != 0xFF
            else:
                if self._n >= MAX_PACKET:
                    self.overruns += 1
                    self._skip = True
                    continue
                buf[self._n] = b
                self._n += 1
                self._rem -= 1
        return i

    def _finish(self) -> bool:
        fn = self._fn
        n = self._n
        rem = self._rem
        skip = self._skip
        self._reset()
        if skip:
            return False
        if rem != 0:
            self.framing_errors += 1  # truncated block
            return False
        if n < HEADER_LEN + CRC_LEN or self.buf[4] + HEADER_LEN + CRC_LEN != n:
            self.framing_errors += 1
            return False
        b = self.buf
        if crc16_ccitt(b, 0xFFFF, 0, n - CRC_LEN) != (b[n - 2] | (b[n - 1] << 8)):
            self.crc_errors += 1
            return False
        self.frame[fn] = 0
        self.frame_len = fn + 1
        self.dst = b[0]
        self.src = b[1]
        self.type = b[2]
        self.seq = b[3]
        self.length = b[4]
        self.packets += 1
        self.ready = True
        return True

    def clear_wake(self) -> None:
        self.wake_seen = False

    def iter_feed(self, data):
        """Convenience generator (allocates; for the PC): yields ``self`` for each packet in ``data``."""
        i = 0
        n = len(data)
        while i < n:
            i = self.feed(data, i, n)
            if self.ready:
                yield self
