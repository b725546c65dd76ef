"""ModuleLink on its own: routing, store and forward, ENUMERATE by hop count, COLLECT, bounded queues, wake."""

import bms_packet as P
from module_link import ModuleLink

from hil.clock import VirtualClock
from hil.sim_uart import SimLink


class Bench:
    """A module between a fake host (``host`` end of the UP cable) and a fake next module (``next``)."""

    def __init__(self, **kw):
        self.clock = VirtualClock()
        self.up = SimLink(self.clock, name="up")
        self.down = SimLink(self.clock, name="down")
        self.link = ModuleLink(self.up.b, self.down.a, **kw)
        self.host = self.up.a
        self.next = self.down.b

    def run(self, ms=5):
        pkts = []
        for _ in range(ms * 4):
            self.clock.advance_us(250)
            p = self.link.poll(self.clock.ms)
            while p is not None:
                pkts.append((p.dst, p.src, p.type, p.seq, bytes(p.payload[: p.length])))
                p = self.link.poll(self.clock.ms)
        return pkts

    @staticmethod
    def frames(uart):
        data = uart.read() or b""
        dec = P.PacketDecoder()
        return [(p.dst, p.src, p.type, p.seq, bytes(p.payload[: p.length])) for p in dec.iter_feed(data)]


def _enumerated(b, hop=0):
    b.host.write(P.build_frame(0xFF, 0, P.ENUMERATE, 1, bytes([hop])))
    return b.run()


def test_enumerate_takes_hop_plus_one_and_forwards_hop_plus_one():
    b = Bench()
    got = _enumerated(b, hop=4)
    assert b.link.address == 5
    assert got == [(0xFF, 0, P.ENUMERATE, 1, b"\x04")]  # the app sees it (to answer ENUMERATED)
    assert Bench.frames(b.next) == [(0xFF, 0, P.ENUMERATE, 1, b"\x05")]


def test_reply_goes_up_with_own_address_only_after_enumeration():
    b = Bench()
    assert not b.link.reply(P.PONG, 9, 0)
    assert b.link.unaddressed_replies == 1
    _enumerated(b)
    assert b.link.reply(P.PONG, 9, 0)
    b.run()
    assert Bench.frames(b.host) == [(0, 1, P.PONG, 9, b"")]


def test_packets_for_others_go_down_whole_and_are_not_delivered():
    b = Bench()
    _enumerated(b)
    b.next.read()
    frame = P.build_frame(3, 0, P.GET_CELLS, 7)
    b.host.write(frame)
    assert b.run() == []
    b.run()
    assert b.next.read() == frame  # verbatim, not rebuilt


def test_own_and_broadcast_packets_are_delivered_broadcasts_also_forwarded():
    b = Bench()
    _enumerated(b)
    b.next.read()
    b.host.write(P.build_frame(1, 0, P.PING, 2) + P.build_frame(0xFF, 0, P.SAMPLE, 3, b"\x2a"))
    got = b.run()
    assert [(t, s) for _, _, t, s, _ in got] == [(P.PING, 2), (P.SAMPLE, 3)]
    assert Bench.frames(b.next) == [(0xFF, 0, P.SAMPLE, 3, b"\x2a")]


def test_everything_from_down_goes_up_whole_and_in_order():
    b = Bench()
    _enumerated(b)
    frames = [P.build_frame(0, a, P.STATUS, 5, bytes(13)) for a in (2, 3, 4)]
    b.next.write(b"".join(frames))
    b.run()
    b.link.reply(P.PONG, 6, 0)
    b.run()
    assert Bench.frames(b.host) == [(0, a, P.STATUS, 5, bytes(13)) for a in (2, 3, 4)] + [(0, 1, P.PONG, 6, b"")]
    assert b.link.relayed_up == 3


def test_relayed_and_own_frames_never_interleave():
    b = Bench()
    _enumerated(b)
    # a long answer from below is arriving byte by byte while this module answers
    frame = P.build_frame(0, 2, P.CELLS, 8, bytes([8, 12]) + bytes(range(1, 25)))
    b.next.write(frame)
    b.clock.advance_us(400)  # half of it is in
    b.link.poll(b.clock.ms)
    b.link.reply(P.PONG, 8, 0)
    b.run()
    got = Bench.frames(b.host)
    assert sorted(x[1] for x in got) == [1, 2]  # both whole: no CRC or framing loss at the host
    assert b.link.up_decoder.errors == 0


def test_full_queue_drops_and_counts():
    b = Bench(up_slots=2)
    _enumerated(b)
    b.link.up_uart = None  # not used: we only fill the queue without flushing
    q = b.link._up_q
    w = P.PacketWriter()
    n = w.finish(0, 2, P.PONG, 1, 0)
    assert b.link._queue_up(w.frame, n) and b.link._queue_up(w.frame, n)
    assert not b.link._queue_up(w.frame, n)
    assert b.link.drops == 1 and q.count == 2
    assert b.link.link_errors == 1


def test_collect_expands_into_the_gets_the_app_already_answers():
    b = Bench()
    _enumerated(b)
    b.next.read()
    b.host.write(P.build_frame(0xFF, 0, P.COLLECT, 11, bytes([P.WHAT_ALL])))
    got = b.run()
    assert [(d, t, s, pl) for d, _, t, s, pl in got] == [
        (1, P.GET_CELLS, 11, b""), (1, P.GET_TEMPS, 11, b""), (1, P.GET_STATUS, 11, b"")]
    assert Bench.frames(b.next) == [(0xFF, 0, P.COLLECT, 11, bytes([7]))]  # and passes it on


def test_collect_bitmap_not_selecting_this_module_is_only_forwarded():
    b = Bench()
    _enumerated(b, hop=2)  # address 3
    b.next.read()
    pl = bytearray(4)
    sel = bytearray(9)
    sel[2] = sel[8] = 1
    n = P.pack_collect_into(pl, 0, P.WHAT_CELLS, sel, 8)
    b.host.write(P.build_frame(0xFF, 0, P.COLLECT, 12, bytes(pl[:n])))
    assert b.run() == []
    assert len(Bench.frames(b.next)) == 1
    sel[3] = 1
    n = P.pack_collect_into(pl, 0, P.WHAT_CELLS | P.WHAT_STATUS, sel, 8)
    b.host.write(P.build_frame(0xFF, 0, P.COLLECT, 13, bytes(pl[:n])))
    assert [t for _, _, t, _, _ in b.run()] == [P.GET_CELLS, P.GET_STATUS]


def test_silent_ms_counts_from_the_last_valid_packet_from_upstream():
    b = Bench()
    b.run(10)
    _enumerated(b)
    t = b.clock.ms
    assert b.link.silent_ms(t) <= 5
    b.host.write(b"\x13\x37garbage\x00")  # not a valid packet: does not count as the host speaking
    b.next.write(P.build_frame(0, 2, P.PONG, 1))  # traffic from below does not count either
    b.run(100)
    assert b.link.silent_ms(b.clock.ms) >= 100


def test_wake_preamble_is_passed_down():
    b = Bench()
    b.host.write(bytes(P.WAKE_LEN))
    b.run()
    assert b.link.wakes == 1
    assert (b.next.read() or b"").count(0) >= P.WAKE_LEN
    assert b.link.up_decoder.errors == 0


def test_manual_direction_pins_are_raised_only_while_writing():
    from hil.sim_pins import SimPin

    clock = VirtualClock()
    up, down = SimLink(clock), SimLink(clock)
    up_de, down_de = SimPin("up_de", clock), SimPin("down_de", clock)
    up_de.switch_to_output(False)
    down_de.switch_to_output(False)
    up.b.dir_pin = up_de
    down.a.dir_pin = down_de
    link = ModuleLink(up.b, down.a, up_dir=up_de, down_dir=down_de)
    up.a.write(P.build_frame(0xFF, 0, P.ENUMERATE, 1, b"\x00"))
    clock.advance_us(2000)
    link.poll(clock.ms)
    link.reply(P.PONG, 1, 0)
    clock.advance_us(2000)
    assert [v for _, v in up_de.history] == [False, True, False]
    assert [v for _, v in down_de.history] == [False, True, False]
    assert up.b.tx_without_de == 0 and down.a.tx_without_de == 0
    assert P.parse_frame(up.a.read())[2] == P.PONG
