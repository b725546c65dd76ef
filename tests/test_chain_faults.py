"""The chain under line noise: nothing wrong is ever accepted, cycles still complete, counters tell the story.

"1 % of bytes corrupted" is run two ways (docs/protocol.md §6): on the host's own cable, which every packet
crosses (1 % of the bytes the host exchanges), and spread over every cable at 1 - 0.99^(1/8) per hop
(1 % per byte end to end for the farthest module).
"""

import bms_packet as P
import pytest
from chain import FRESH_ALL, TEMP_UNKNOWN

from hil.chain_rig import ChainRig
from hil.fake_module import canned_cell_100uv, canned_temp_dc

N = 8
CYCLES = 60


def _check_nothing_wrong(h):
    """Every value the host shows is either unknown or exactly what that module sent for this sample."""
    sid = h.cycle_sample_id
    for a in range(1, N + 1):
        for i in range(12):
            v = h.cell_100uv(a, i)
            assert v == P.CELL_UNKNOWN or v == canned_cell_100uv(a, sid, i), (a, i, v)
        if h.fresh[a] & 1:
            assert all(h.cell_100uv(a, i) != P.CELL_UNKNOWN for i in range(12))
        t = h.temp_dc(a, 0)
        assert t == TEMP_UNKNOWN or t == canned_temp_dc(a, sid, 0), (a, t)
        if h.fresh[a] & 4:
            assert h.cell_count[a] == 12 and h.open_wire[a] == 0 and h.wiring[a] == 0


def _run(rig, cycles=CYCLES):
    h = rig.host
    complete = 0
    for _ in range(cycles):
        c = h.cycle_count
        assert rig.run_until(lambda c=c: h.cycle_count > c, 1000)
        _check_nothing_wrong(h)
        if all(h.fresh[a] == FRESH_ALL for a in range(1, N + 1)):
            complete += 1
        assert h.last_cycle_dur_ms <= h.cycle_ms
    return complete


@pytest.mark.parametrize("where", ["host_cable", "every_cable"])
def test_one_percent_corruption_never_accepts_wrong_data(where):
    rig = ChainRig(N, seed=3)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 1, 1000)
    if where == "host_cable":
        rig.links[0].byte_corrupt_prob = 0.01
    else:
        rig.set_faults(byte_corrupt_prob=1 - 0.99 ** (1.0 / N))
    complete = _run(rig)
    corrupted = sum(link.bytes_corrupted for link in rig.links)
    assert corrupted > 100  # the noise really was there
    assert complete >= CYCLES * 3 // 4, complete  # most cycles complete within the retry budget
    assert h.crc_errors + h.framing_errors > 0 and h.retries_sent > 0 and h.timeouts > 0
    assert h.module_count == N and h.enumerations == 1  # nobody was lost over it


def test_dropped_bytes_are_survived_too():
    rig = ChainRig(N, seed=4)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 1, 1000)
    rig.set_faults(drop_prob=0.002)
    complete = _run(rig, 40)
    assert complete >= 30
    assert h.framing_errors + h.crc_errors > 0


def test_bit_errors_including_framing_errors():
    rig = ChainRig(N, seed=5)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 1, 1000)
    rig.set_faults(bit_error_rate=0.0002)  # ~0.2 % of bytes per hop
    complete = _run(rig, 40)
    assert complete >= 30


def test_module_counters_see_their_own_errors():
    rig = ChainRig(3, seed=6)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 1, 1000)
    rig.links[2].byte_corrupt_prob = 0.05  # only the cable between modules 2 and 3
    rig.run_ms(2000)
    m2 = rig.modules[1].link
    m3 = rig.modules[2].link
    assert m2.down_decoder.errors > 0 and m3.up_decoder.errors > 0
    assert rig.modules[0].link.link_errors == 0
    # and module 2 reports them to the host in STATUS (module 1 has none to report)
    assert h.link_errors[2] > 0 and h.link_errors[1] == 0
