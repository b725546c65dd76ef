"""The chain master fed random packets with good CRCs (every reply type, any payload length, often with the
sequence number it is waiting for) on top of a working 3-module chain: it never crashes, counts what it
drops, and the chain is back to complete cycles once they stop."""

import bms_packet as P
from chain import FRESH_ALL, S_ENUM, S_ROUND
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hil.chain_rig import ChainRig
from hil.fake_module import canned_cell_100uv

N = 3
REPLIES = (P.ENUMERATED, P.PONG, P.CELLS, P.TEMPS, P.STATUS, P.CONFIG_ACK, P.BALANCE_ACK, P.IDENTITY, P.NACK)

WELL_FORMED = {  # payload lengths the master accepts for each reply (CELLS/TEMPS: n = 12 / 2)
    P.ENUMERATED: P.ENUMERATED_LEN, P.CELLS: 2 + 2 * 12, P.TEMPS: 4 + 2 * 2, P.STATUS: P.STATUS_LEN,
    P.CONFIG_ACK: P.CONFIG_LEN, P.BALANCE_ACK: P.BALANCE_ACK_LEN, P.NACK: P.NACK_LEN, P.PONG: 0,
    P.IDENTITY: P.IDENTITY_LEN,
}


@st.composite
def frames(draw):
    """(dst, src, type, use the awaited seq, else this seq, payload, ms before the next, when to send)."""
    dst = draw(st.sampled_from([P.ADDR_HOST] * 6 + [1, P.ADDR_BROADCAST, 7]))
    src = draw(st.sampled_from([4, 1, 2, 3, 5, 32, 33, 200, 0, 255]))
    ptype = draw(st.sampled_from(REPLIES + (0x42, P.CELLS, P.STATUS, P.NACK)))
    # when to send: once the master waits for answers to a COLLECT or to an ENUMERATE, or at once
    when = draw(st.sampled_from(["round", "round", "now", "enum"]))
    if when == "enum" and draw(st.booleans()):
        ptype = P.ENUMERATED
    payload = draw(st.binary(max_size=P.MAX_PAYLOAD))
    if ptype in WELL_FORMED and draw(st.booleans()):
        payload = bytearray(draw(st.binary(min_size=WELL_FORMED[ptype], max_size=WELL_FORMED[ptype])))
        if ptype == P.CELLS:
            payload[1] = 12
        elif ptype == P.TEMPS:
            payload[1] = 2
        elif ptype == P.ENUMERATED:
            payload[0] = src
        payload = bytes(payload)
    current = draw(st.sampled_from([True, True, True, False]))
    seq = draw(st.integers(0, 255))
    gap_ms = draw(st.integers(0, 30))
    return dst, src, ptype, current, seq, payload, gap_ms, when


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames(), min_size=1, max_size=30), st.integers(0, 400))
def test_random_valid_packets_never_crash_the_master(stream, start_ms):
    rig = ChainRig(N, seed=9)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 1, 1000)
    rig.run_ms(start_ms)  # land in any state of the cycle
    host_end = rig.links[0].a
    module_end = rig.links[0].b  # what the host hears: written here, after module 1's own frames
    lost = host_end.lost_while_tx  # half duplex: what arrives while the host talks is lost
    misrouted = h.misrouted
    dropped = h.stale + h.bad_payloads
    not_for_host = foreign = 0
    phantoms = False  # a forged ENUMERATED for the next address during enumeration is a module for all we know
    for dst, src, ptype, current, seq, payload, gap_ms, when in stream:
        if when == "round":
            assert rig.run_until(lambda: h.state == S_ROUND and not host_end.tx_busy(), 400, 100)
        elif when == "enum":
            h.wake()
            assert rig.run_until(lambda: h.state == S_ENUM and not host_end.tx_busy(), 400, 100)
            # only an answer that extends the run 1..count can be taken (docs/protocol.md, enumeration)
            phantoms |= ptype == P.ENUMERATED and current and dst == P.ADDR_HOST and src == h.module_count + 1
        module_end.write(P.build_frame(dst, src, ptype, h._seq if current else seq, payload))
        if dst != P.ADDR_HOST:
            not_for_host += 1
        elif not 1 <= src <= h.module_count and ptype != P.ENUMERATED:
            foreign += 1  # from no module of this chain: stale (old seq) or a bad payload, never data
        rig.run_ms(gap_ms + 1)
        assert N <= h.module_count <= h.max_modules
        if not phantoms:
            assert h.module_count == N
            assert not any(h.present[N + 1 :]) and not any(h.fresh[N + 1 :])  # a reply is no introduction
    rig.run_ms(5)
    assert h.misrouted - misrouted <= not_for_host
    if host_end.lost_while_tx == lost:  # every injected frame was heard: each one is counted
        assert h.misrouted - misrouted == not_for_host
        assert h.stale + h.bad_payloads - dropped >= foreign
    # Once the noise stops the chain settles: every real module complete, real values only.
    assert rig.run_until(lambda: all(h.fresh[a] == FRESH_ALL for a in range(1, N + 1))
                         and all(not h.missing[a] for a in range(1, N + 1)), 5000)
    sid = h.cycle_sample_id
    for a in range(1, N + 1):
        assert [h.cell_100uv(a, i) for i in range(12)] == [canned_cell_100uv(a, sid, i) for i in range(12)]
