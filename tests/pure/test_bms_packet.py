"""Packet layer of the cascade link (docs/protocol.md §2-3). Runs on MicroPython too."""

import bms_packet as P
from bms_link import crc16_ccitt
from upy_check import raises


def _decode_all(data, dec=None):
    dec = dec or P.PacketDecoder()
    out = []
    i = 0
    while i < len(data):
        i = dec.feed(data, i, len(data))
        if dec.ready:
            out.append((dec.dst, dec.src, dec.type, dec.seq, bytes(dec.payload[: dec.length])))
    return out, dec


def test_ping_frame_matches_protocol_doc():
    # docs/protocol.md §4: PING to module 3, seq 0x10: 03 00 02 10 00 + CRC 0x92CD (LE), COBS, 0x00
    frame = P.build_frame(3, 0, P.PING, 0x10)
    assert frame == bytes([0x02, 0x03, 0x03, 0x02, 0x10, 0x03, 0xCD, 0x92, 0x00])
    assert crc16_ccitt(bytes([3, 0, 2, 0x10, 0])) == 0x92CD
    assert P.parse_frame(frame) == (3, 0, P.PING, 0x10, b"")


def test_round_trip_every_field():
    payload = bytes(range(1, 27))
    frame = P.build_frame(0, 7, P.CELLS, 200, payload)
    pkts, dec = _decode_all(frame)
    assert pkts == [(0, 7, P.CELLS, 200, payload)]
    assert dec.packets == 1 and dec.errors == 0
    assert bytes(dec.frame[: dec.frame_len]) == frame  # kept verbatim for relays


def test_chunks_of_any_size_give_the_same_packets():
    stream = P.build_frame(1, 0, P.GET_CELLS, 1) + P.build_frame(0, 1, P.PONG, 2, b"\x00\x00\x05")
    for size in (1, 2, 3, 7, 64):
        dec = P.PacketDecoder()
        got = []
        for k in range(0, len(stream), size):
            chunk = stream[k : k + size]
            for pkt in dec.iter_feed(chunk):
                got.append((pkt.type, pkt.seq))
        assert got == [(P.GET_CELLS, 1), (P.PONG, 2)], size


def test_flipped_bit_is_counted_and_next_packet_survives():
    good = P.build_frame(2, 0, P.GET_STATUS, 9)
    bad = bytearray(P.build_frame(0, 2, P.STATUS, 9, bytes(13)))
    bad[4] ^= 0x01  # a data byte of the packet, not a COBS code
    pkts, dec = _decode_all(bytes(bad) + good)
    assert [p[2] for p in pkts] == [P.GET_STATUS]
    assert dec.crc_errors + dec.framing_errors == 1


def test_garbage_truncation_and_overlong_resync():
    good = P.build_frame(5, 0, P.PING, 3)
    truncated = good[:4] + b"\x00"
    overlong = bytes([0xFF]) * 120 + b"\x00"
    garbage = b"\x13\x37\xaa\x55\x00"
    pkts, dec = _decode_all(garbage + truncated + overlong + good)
    assert [(p[0], p[2], p[3]) for p in pkts] == [(5, P.PING, 3)]
    assert dec.overruns == 1
    assert dec.framing_errors + dec.crc_errors == 2


def test_a_block_cut_short_by_the_delimiter_is_a_framing_error():
    # What did arrive is a whole packet with a good CRC, but the COBS code promised two more bytes:
    # the frame was cut (a lost byte, a corrupted code), so it is refused, not guessed at.
    raw = bytearray([5, 1, P.PONG, 3, 1, 7])
    crc = crc16_ccitt(raw)
    raw.append(crc & 0xFF)
    raw.append(crc >> 8)
    for b in raw:
        assert b != 0  # one COBS block: the frame is the code byte, the raw bytes, the delimiter
    pkts, dec = _decode_all(bytes([len(raw) + 3]) + bytes(raw) + b"\x00")
    assert pkts == [] and dec.framing_errors == 1
    pkts, dec = _decode_all(bytes([len(raw) + 1]) + bytes(raw) + b"\x00", dec)  # the right code: accepted
    assert pkts == [(5, 1, P.PONG, 3, b"\x07")]


def test_length_field_mismatch_is_a_framing_error():
    raw = bytearray([1, 0, P.PING, 1, 3])  # claims 3 payload bytes, has none
    crc = crc16_ccitt(raw)
    raw.append(crc & 0xFF)
    raw.append(crc >> 8)
    from bms_link import cobs_encode

    pkts, dec = _decode_all(cobs_encode(raw) + b"\x00")
    assert pkts == [] and dec.framing_errors == 1
    raises(ValueError, P.parse_frame, cobs_encode(raw))


def test_idle_zeros_are_not_errors_but_a_long_run_is_a_wake():
    dec = P.PacketDecoder()
    _decode_all(b"\x00\x00", dec)
    assert dec.errors == 0 and not dec.wake_seen
    _decode_all(bytes(P.WAKE_LEN), dec)
    assert dec.wake_seen and dec.errors == 0
    dec.clear_wake()
    assert not dec.wake_seen
    _decode_all(bytes(3), dec)  # the same run going on is not a second wake
    assert not dec.wake_seen
    _decode_all(P.build_frame(1, 0, P.PING, 1) + bytes(P.WAKE_LEN), dec)
    assert dec.wake_seen  # a new run after traffic is


def test_writer_fills_payload_in_place():
    w = P.PacketWriter()
    n = P.pack_cells_into(w.payload, 0, 42, [36000, 36010, P.CELL_UNKNOWN], 3)
    flen = w.finish(0, 4, P.CELLS, 17, n)
    dst, src, t, seq, pl = P.parse_frame(w.frame_mv[:flen])
    assert (dst, src, t, seq) == (0, 4, P.CELLS, 17)
    out = [0, 0, 0]
    assert P.unpack_cells_into(pl, 0, len(pl), out) == 3
    assert out == [36000, 36010, 0xFFFF] and pl[0] == 42


def test_cells_length_checked():
    pl = bytearray(8)
    P.pack_cells_into(pl, 0, 1, [1, 2, 3], 3)
    assert P.unpack_cells_into(pl, 0, 7, [0] * 3) == -1  # one byte short
    raises(ValueError, P.pack_cells_into, bytearray(64), 0, 1, [0] * 17, 17)


def test_temps_absent_and_negative():
    pl = bytearray(16)
    n = P.pack_temps_into(pl, 0, 5, [-105, P.TEMP_ABSENT], 2, 312)
    assert n == 8
    out = [0, 0]
    assert P.unpack_temps_into(pl, 0, n, out) == 2
    assert out == [-105, -32768]
    assert P.get_i16(pl, 6) == 312


def test_status_config_balance_identity_round_trip():
    pl = bytearray(16)
    assert P.pack_status_into(pl, 0, 0x0125, 0x1000, 0x0A05, 0, 3, 70000, 12) == 13
    assert P.unpack_status(pl, 0) == (0x0125, 0x1000, 0x0A05, 0, 3, 0xFFFF, 12)  # counters saturate
    assert P.pack_config_into(pl, 0, 12, 600, 2000, 600, 700) == 9
    assert P.unpack_config(pl, 0) == (12, 600, 2000, 600, 700)
    assert P.pack_balance_into(pl, 0, 36010, 120) == 4
    assert P.unpack_balance(pl, 0) == (36010, 120)
    assert P.pack_identity_into(pl, 0, 1, 2, 12, 0xDEADBEEF) == 8
    assert P.unpack_identity(pl, 0) == (1, 1, 2, 12, 0xDEADBEEF)


def test_payload_too_long_refused():
    raises(ValueError, P.build_frame, 1, 0, P.CONFIG, 0, bytes(P.MAX_PAYLOAD + 1))
    assert len(P.build_frame(1, 0, P.CONFIG, 0, bytes(P.MAX_PAYLOAD))) <= P.MAX_FRAME


def test_sizes_are_consistent():
    from bms_link import cobs_max_len

    assert P.MAX_PACKET == P.HEADER_LEN + P.MAX_PAYLOAD + P.CRC_LEN
    assert P.MAX_FRAME == cobs_max_len(P.MAX_PACKET) + 1
    assert P.MAX_PAYLOAD >= 2 + 2 * P.MAX_CELLS
    assert P.MAX_PAYLOAD >= 4 + 2 * P.MAX_TEMPS


def test_collect_bitmap_selects_exactly_the_marked_modules():
    pl = bytearray(8)
    sel = bytearray(11)
    sel[1] = sel[9] = sel[10] = 1
    n = P.pack_collect_into(pl, 0, P.WHAT_CELLS | P.WHAT_STATUS, sel, 10)
    assert n == 3 and bytes(pl[:3]) == bytes([0x05, 0x01, 0x03])
    assert [a for a in range(1, 17) if P.collect_selects(pl, 0, n, a)] == [1, 9, 10]


def test_collect_without_bitmap_selects_everyone():
    pl = bytearray(4)
    n = P.pack_collect_into(pl, 0, P.WHAT_ALL)
    assert n == 1 and pl[0] == 7
    assert P.collect_selects(pl, 0, n, 1) and P.collect_selects(pl, 0, n, 200)
    assert not P.collect_selects(pl, 0, 0, 1)  # an empty payload is malformed: nobody answers
