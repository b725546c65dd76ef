"""Two real module boards in a chain: both sleep on host silence, one preamble wakes both, both answer again."""

import bms_packet as P
from hil.clock import VirtualClock
from hil.module_services_sim import HostProbe, SimModuleBoard
from hil.sim_uart import SimLink


def test_a_preamble_wakes_the_whole_chain():
    clock = VirtualClock()
    cells = [3_300_000] * 12
    cable = [SimLink(clock, name="c%d" % k) for k in range(3)]
    boards = [
        SimModuleBoard(clock, cable[0].b, cable[1].a, lambda: cells, boot_ms=30),
        SimModuleBoard(clock, cable[1].b, cable[2].a, lambda: cells, boot_ms=30),
    ]
    host = HostProbe(cable[0].a)

    def run(ms):
        for _ in range(ms):
            clock.advance(1)
            for b in boards:
                b.step(clock.ms)

    def enumerate_chain():
        seq = host.send(P.ADDR_BROADCAST, P.ENUMERATE, bytes([0]))
        run(30)
        return sorted(r[0] for r in host.take_all(seq) if r[1] == P.ENUMERATED)

    assert enumerate_chain() == [1, 2]
    run(2100)
    assert all(b.sleeping for b in boards)
    assert all(b.model.asleep for b in boards)
    host.wake()
    run(100)  # module 1 boots (30 ms), sends a preamble down; module 2 boots
    assert [b.boots for b in boards] == [2, 2]
    assert not any(b.sleeping for b in boards)
    assert enumerate_chain() == [1, 2]
    host.send(P.ADDR_BROADCAST, P.SAMPLE, bytes([1]))
    run(5)
    seq = host.send(2, P.GET_CELLS)
    run(20)
    r = host.take(seq)
    assert r is not None and r[0] == 2 and r[1] == P.CELLS and P.get_u16(r[3], 2) == 33000
