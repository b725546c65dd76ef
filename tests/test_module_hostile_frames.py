"""A module board fed random packets with good CRCs (every type, any payload length, any address) on both ports:
it never crashes, answers every request for it (a NACK with a reason when it cannot), relays what comes from
below verbatim, and its configuration never leaves the rules (a refused CONFIG changes nothing)."""

import bms_packet as P
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hil.clock import VirtualClock
from hil.module_services_sim import HostProbe, SimModuleBoard
from hil.sim_uart import SimLink

KNOWN = (P.ENUMERATE, P.PING, P.SAMPLE, P.GET_CELLS, P.GET_TEMPS, P.GET_STATUS, P.CONFIG, P.BALANCE, P.IDENTIFY,
         P.COLLECT, P.NACK) + tuple(range(0x80, 0x8B))
# Requests a module must answer at once when they are for it (GET_CELLS/GET_TEMPS/COLLECT may wait for a
# conversion and a newer request replaces an older waiting one; SAMPLE and replies get no answer).
ANSWERED = (P.PING, P.GET_STATUS, P.CONFIG, P.BALANCE, P.IDENTIFY)

types_ = st.one_of(
    st.sampled_from(KNOWN), st.sampled_from(ANSWERED), st.integers(0, 255).filter(lambda t: t != P.SLEEP)
)
FIXED_LEN = {P.CONFIG: P.CONFIG_LEN, P.BALANCE: P.BALANCE_LEN}
frames = st.tuples(
    st.sampled_from([1, 1, 1, P.ADDR_BROADCAST, P.ADDR_HOST, 2, 7]) | st.integers(0, 255),  # dst
    types_,
    st.binary(max_size=P.MAX_PAYLOAD) | st.integers(0, 10).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    st.booleans(),  # from below (DOWN port) instead of from the host
)


def _config_valid(app):
    return 4 <= app.cell_count <= 12 and app.temp_warn_dc < app.temp_limit_dc and 500 <= app.silence_ms <= 60000


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames, min_size=1, max_size=25))
def test_random_valid_packets_never_crash_a_module(stream):
    clock = VirtualClock(0)
    up = SimLink(clock, name="up")
    down = SimLink(clock, name="down")
    board = SimModuleBoard(clock, up.b, down.a, lambda: [3_300_000] * 12)
    host = HostProbe(up.a)

    def run(ms):
        for _ in range(ms):
            clock.advance(1)
            board.step(clock.ms)

    seq = host.send(P.ADDR_BROADCAST, P.ENUMERATE, b"\x00")
    run(5)
    assert host.take(seq)[1] == P.ENUMERATED
    unusable = 0  # broadcasts with a bad length and replies from upstream: nobody to NACK, only counted
    expected = []  # (seq, type) the module must answer
    relayed = []  # frames injected from below
    up_bytes = bytearray()
    for k, (dst, ptype, payload, from_below) in enumerate(stream):
        seq = 100 + k  # one seq per request, so each answer is matched to its request
        frame = P.build_frame(dst, 2 if from_below else 0, ptype, seq, payload)
        addr = board.link.address
        if from_below:
            down.b.write(frame)
            relayed.append(frame)
        else:
            up.a.write(frame)
            if dst == P.ADDR_BROADCAST and (ptype == P.SAMPLE and len(payload) != 1
                                            or ptype == P.ENUMERATE and len(payload) != 1):
                unusable += 1
            elif dst == addr and (ptype & P.REPLY or ptype == P.NACK):
                unusable += 1
            if dst == addr and ptype in ANSWERED or (dst == addr and not ptype & P.REPLY and ptype not in KNOWN):
                expected.append((seq, ptype, len(payload)))
        run(4)  # the frame arrives (<= 1.8 ms) and the module acts on it
        up_bytes += up.a.read() or b""
        assert not board.sleeping
        app = board.app
        assert _config_valid(app)
        assert not app.balancing or 10000 <= app._target_100uv <= 50000  # only a cell voltage is a target
    run(10)
    up_bytes += up.a.read() or b""

    # What came up: the module's answers and, verbatim, every frame from below.
    dec = P.PacketDecoder()
    answers = {}
    for pkt in dec.iter_feed(bytes(up_bytes)):
        answers[(pkt.src, pkt.seq)] = (pkt.type, bytes(pkt.payload[: pkt.length]))
    assert dec.errors == 0
    for f in relayed:
        assert f in up_bytes
    assert board.link.drops == 0
    assert board.link.malformed >= unusable  # counted, so STATUS shows it
    for seq, ptype, plen in expected:
        got = answers.get((board.link.address, seq))
        assert got is not None, (hex(ptype), seq)
        rtype, rpl = got
        if ptype not in KNOWN:
            assert (rtype, rpl) == (P.NACK, bytes([ptype, P.NACK_UNKNOWN_TYPE]))
        elif ptype in FIXED_LEN and plen != FIXED_LEN[ptype]:
            assert (rtype, rpl) == (P.NACK, bytes([ptype, P.NACK_BAD_LENGTH]))
        else:
            assert rtype in (ptype | P.REPLY, P.NACK)
            if rtype == P.NACK:
                assert rpl[0] == ptype and rpl[1] == P.NACK_BAD_VALUE

    # Still a working module: enumerate from scratch and it answers with sane numbers.
    seq = host.send(P.ADDR_BROADCAST, P.ENUMERATE, b"\x00")
    run(5)
    r = host.take(seq)
    assert r is not None and r[0] == 1
    seq = host.send(1, P.GET_STATUS)
    run(5)
    r = host.take(seq)
    assert r is not None and r[1] == P.STATUS and 4 <= r[3][12] <= 12

