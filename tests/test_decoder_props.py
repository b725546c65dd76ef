"""Property tests of the streaming packet decoder (CPython only: hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st

import bms_packet as P

packets = st.tuples(
    st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255),
    st.binary(max_size=P.MAX_PAYLOAD),
)


def _feed_chunks(dec, data, cuts):
    got = []
    pos = 0
    bounds = sorted(set(c % (len(data) + 1) for c in cuts)) + [len(data)]
    for end in bounds:
        chunk = data[pos:end]
        pos = end
        i = 0
        while i < len(chunk):
            i = dec.feed(chunk, i, len(chunk))
            if dec.ready:
                got.append((dec.dst, dec.src, dec.type, dec.seq, bytes(dec.payload[: dec.length])))
    return got


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(0, 10_000), max_size=20))
def test_never_raises_on_arbitrary_bytes_in_arbitrary_chunks(data, cuts):
    dec = P.PacketDecoder()
    _feed_chunks(dec, data, cuts)
    assert dec.packets + dec.errors >= 0


@settings(max_examples=200, deadline=None)
@given(st.lists(packets, min_size=1, max_size=6), st.lists(st.integers(0, 10_000), max_size=10))
def test_clean_stream_gives_back_exactly_what_was_sent(pkts, cuts):
    stream = b"".join(P.build_frame(*p) for p in pkts)
    dec = P.PacketDecoder()
    assert _feed_chunks(dec, stream, cuts) == [tuple(p) for p in pkts]
    assert dec.errors == 0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(packets, min_size=1, max_size=6),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=6),
    st.binary(max_size=40),
)
def test_corrupted_stream_never_yields_a_packet_that_was_not_sent(pkts, flips, garbage):
    stream = bytearray(garbage + b"".join(P.build_frame(*p) for p in pkts))
    for pos, mask in flips:
        stream[pos % len(stream)] ^= mask
    dec = P.PacketDecoder()
    sent = [tuple(p) for p in pkts]
    for p in _feed_chunks(dec, bytes(stream), []):
        # CRC-16 lets through about 1 in 65 536 random frames; hypothesis would need luck to find one
        assert p in sent


@settings(max_examples=100, deadline=None)
@given(packets, st.binary(max_size=300))
def test_resynchronises_at_the_next_delimiter_after_any_garbage(p, garbage):
    dec = P.PacketDecoder()
    stream = garbage + b"\x00" + P.build_frame(*p)
    assert _feed_chunks(dec, stream, [])[-1:] == [tuple(p)]
