"""Host ChainMaster + ModuleLink + fake modules on byte-timed simulated links (hil/chain_rig.py)."""

import bms_packet as P
import pytest
from chain import FRESH_ALL, S_ASLEEP, TEMP_UNKNOWN

from hil.chain_rig import ChainRig
from hil.clock import TICKS_PERIOD
from hil.fake_module import canned_cell_100uv, canned_temp_dc


def _next_cycle(rig, timeout_ms=1000):
    h = rig.host
    c = h.cycle_count
    assert rig.run_until(lambda: h.cycle_count > c, timeout_ms), "no cycle completed"


def _assert_cycle_data_right(rig, addrs):
    """Every module in addrs delivered this cycle's sample, exactly as it sent it."""
    h = rig.host
    sid = h.cycle_sample_id
    for a in addrs:
        assert h.fresh[a] == FRESH_ALL, a
        for i in range(12):
            assert h.cell_100uv(a, i) == canned_cell_100uv(a, sid, i), (a, i)
        assert h.temp_count[a] == 1 and h.temp_dc(a, 0) == canned_temp_dc(a, sid, 0)
        assert h.die_temp_dc[a] == 250 + a
        assert h.cell_count[a] == 12


def test_eight_modules_enumerate_in_chain_order_and_cycle():
    rig = ChainRig(8)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 1, 500)
    assert h.module_count == 8
    assert [m.link.address for m in rig.modules] == [1, 2, 3, 4, 5, 6, 7, 8]
    for _ in range(5):
        _next_cycle(rig)
        _assert_cycle_data_right(rig, range(1, 9))
    assert h.timeouts == 0 and h.crc_errors == 0 and h.stale == 0
    # cycles run on the fixed period
    t0 = h.last_cycle_ms
    _next_cycle(rig)
    assert h.last_cycle_ms - t0 == h.cycle_ms


def test_sixteen_modules_no_limit_of_eight():
    rig = ChainRig(16, master_kwargs={"max_modules": 32})
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 2, 1000)
    assert h.module_count == 16
    _assert_cycle_data_right(rig, range(1, 17))
    assert h.last_cycle_dur_ms < h.cycle_ms


def test_a_chain_longer_than_the_host_accepts_is_cut_not_crashed():
    rig = ChainRig(6, master_kwargs={"max_modules": 4})
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 2, 2000)
    assert h.module_count == 4
    _assert_cycle_data_right(rig, range(1, 5))


def test_115200_baud_works_and_timeouts_scale():
    fast = ChainRig(8).host
    rig = ChainRig(8, baudrate=115_200)
    assert rig.host.hop_ms > fast.hop_ms
    assert rig.run_until(lambda: rig.host.cycle_count >= 2, 1000)
    _assert_cycle_data_right(rig, range(1, 9))


def test_clock_wrap_is_harmless():
    rig = ChainRig(4, start_ms=TICKS_PERIOD - 700)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 10, 3000)  # runs across the 2^29 wrap
    assert rig.clock.ms < 10000  # it did wrap
    _assert_cycle_data_right(rig, range(1, 5))
    assert not any(h.missing[1:5])


def test_host_drives_its_direction_pin_around_every_transmission():
    rig = ChainRig(2)
    assert rig.run_until(lambda: rig.host.cycle_count >= 2, 1000)
    assert rig.links[0].a.tx_without_de == 0
    values = [v for _, v in rig.host_dir.history]
    assert values.count(True) >= 5 and not rig.host_dir.value  # raised for each send, low when idle


def test_direction_pin_stuck_low_finds_nothing_and_says_so():
    rig = ChainRig(2)
    rig.host.dir_pin = None  # the master no longer raises it: the transceiver never drives the pair
    rig.run_ms(1500)
    h = rig.host
    assert h.module_count == 0 and h.cycle_count == 0
    assert h.enumerations >= 2  # it keeps trying (wake + enumerate) instead of hanging
    assert rig.links[0].a.tx_without_de > 0


def test_unplugging_module_5_downstream_cable():
    rig = ChainRig(8)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 2, 1000)
    rig.links[5].unplugged = True  # module 5 DOWN <-> module 6 UP
    t0 = rig.clock.total_ms
    debounce_ms = h.missing_after * h.cycle_ms
    assert rig.run_until(lambda: all(h.missing[a] for a in (6, 7, 8)), debounce_ms + h.cycle_ms)
    assert rig.clock.total_ms - t0 <= debounce_ms + h.cycle_ms
    # 1..5 keep working, 6..8 read unknown, never their old values
    for _ in range(5):
        _next_cycle(rig)
        _assert_cycle_data_right(rig, range(1, 6))
        for a in (6, 7, 8):
            assert not h.present[a] and h.fresh[a] == 0
            assert all(h.cell_100uv(a, i) == P.CELL_UNKNOWN for i in range(12))
            assert h.temp_dc(a, 0) == TEMP_UNKNOWN
    assert not any(h.missing[1:6])
    # plug it back: recovered without resetting anything
    rig.links[5].unplugged = False
    assert rig.run_until(lambda: not any(h.missing[1:9]) and h.fresh[8] == FRESH_ALL, h.rediscover_ms + 500)
    _next_cycle(rig)
    _assert_cycle_data_right(rig, range(1, 9))
    assert h.module_count == 8


def test_a_module_that_drops_out_is_not_reported_before_the_debounce():
    rig = ChainRig(4)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 2, 1000)
    rig.modules[2].mute = {P.COLLECT, P.GET_CELLS, P.GET_TEMPS, P.GET_STATUS}
    for _ in range(h.missing_after - 1):
        _next_cycle(rig)
        assert not h.missing[3] and h.fresh[3] == 0
        assert h.cell_100uv(3, 0) == P.CELL_UNKNOWN  # unknown at once, missing only after the debounce
    _next_cycle(rig)
    assert h.missing[3]
    rig.modules[2].mute = set()
    assert rig.run_until(lambda: h.fresh[3] == FRESH_ALL, h.rediscover_ms + 500)
    assert not h.missing[3]


def test_cells_that_did_not_arrive_read_unknown_not_previous():
    rig = ChainRig(3)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 2, 1000)
    assert h.cell_100uv(2, 0) != P.CELL_UNKNOWN
    rig.modules[1].mute = {P.GET_CELLS}  # module 2 answers TEMPS and STATUS but never CELLS
    _next_cycle(rig)
    assert h.fresh[2] == FRESH_ALL & ~1
    assert all(h.cell_100uv(2, i) == P.CELL_UNKNOWN for i in range(12))
    _assert_cycle_data_right(rig, (1, 3))
    assert h.timeouts > 0


def test_module_not_ready_is_asked_again_within_the_cycle():
    # the AFE takes longer than the host's settle time: the first answer is a NACK "not ready"
    rig = ChainRig(3, module_kwargs={"sample_delay_ms": 8})
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 3, 1500)
    assert h.nacks > 0 and h.nack_reason[1] == P.NACK_NOT_READY
    _assert_cycle_data_right(rig, (1, 2, 3))


def _inject_cells_during_round(rig, seq_offset):
    """Mute module 1's CELLS, wait for a COLLECT round, feed the host a forged CELLS with seq + offset."""
    from chain import S_ROUND

    h = rig.host
    rig.modules[0].mute = {P.GET_CELLS}
    assert rig.run_until(lambda: h.state == S_ROUND, 500)
    pl = bytearray(40)
    n = P.pack_cells_into(pl, 0, h.sample_id, [12345] * 12, 12)
    frame = P.build_frame(0, 1, P.CELLS, (h._await_seq + seq_offset) & 0xFF, bytes(pl[:n]))
    for pkt in P.PacketDecoder().iter_feed(frame):
        h._handle(pkt, rig.now_ms)
    _next_cycle(rig)
    return [h.cell_100uv(1, i) for i in range(12)]


def test_stale_answer_with_an_old_sequence_number_is_dropped():
    rig = ChainRig(2)
    assert rig.run_until(lambda: rig.host.cycle_count >= 2, 1000)
    stale0 = rig.host.stale
    assert _inject_cells_during_round(rig, -3) == [P.CELL_UNKNOWN] * 12
    assert rig.host.stale > stale0
    # control: the very same answer with the current sequence number is taken
    rig = ChainRig(2)
    assert rig.run_until(lambda: rig.host.cycle_count >= 2, 1000)
    assert _inject_cells_during_round(rig, 0) == [12345] * 12


def test_answer_about_another_sample_is_dropped():
    rig = ChainRig(2)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 2, 1000)
    rig.modules[1].mute = {P.SAMPLE}  # module 2 keeps answering about its old sample
    _next_cycle(rig)
    _next_cycle(rig)
    assert h.fresh[2] & 1 == 0 and h.cell_100uv(2, 0) == P.CELL_UNKNOWN
    assert h.stale > 0
    _assert_cycle_data_right(rig, (1,))


def test_host_silent_modules_notice_within_about_two_seconds():
    rig = ChainRig(3)
    assert rig.run_until(lambda: rig.host.cycle_count >= 2, 1000)
    assert not any(m.host_silent for m in rig.modules)
    rig.host_stepping = False  # the host stops talking
    rig.run_ms(1800)
    assert not any(m.host_silent for m in rig.modules)
    rig.run_ms(400)
    assert all(m.host_silent for m in rig.modules)
    assert all(1900 <= m.link.silent_ms(rig.now_ms) <= 2400 for m in rig.modules)


def test_config_to_every_module_is_acknowledged():
    rig = ChainRig(4)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 1, 1000)
    assert all(h.flags[a] & P.FLAG_NOT_CONFIGURED for a in range(1, 5))
    assert h.queue_config(0xFF, 12, 600, 2000, 600, 700)
    assert rig.run_until(lambda: all(h.config_acked[1:5]), 500)
    assert all(m.config == (12, 600, 2000, 600, 700) for m in rig.modules)
    _next_cycle(rig)
    assert not any(h.flags[a] & P.FLAG_NOT_CONFIGURED for a in range(1, 5))


def test_bad_config_is_refused_with_a_reason():
    rig = ChainRig(3)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 1, 1000)
    assert h.queue_config(2, 13, 600, 2000, 600, 700)  # 13 cells on a 12-channel board
    rig.run_ms(100)
    assert not h.config_acked[2]
    assert h.nack_type[2] == P.CONFIG and h.nack_reason[2] == P.NACK_BAD_VALUE
    assert rig.modules[1].config is None
    _next_cycle(rig)  # and the chain goes on
    _assert_cycle_data_right(rig, (1, 2, 3))


def test_balance_command_and_its_ack():
    rig = ChainRig(3)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 1, 1000)
    assert h.queue_balance(3, 30000, 120)
    rig.run_ms(50)
    m = rig.modules[2]
    assert m.balance_target_100uv == 30000 and m.balance_timeout_s == 120
    assert h.balance_ack[3] == m.balance != 0
    assert not (m.balance & (m.balance >> 1))  # never two adjacent cells
    assert rig.modules[0].balance == 0


def test_command_queue_is_bounded():
    rig = ChainRig(1)
    h = rig.host
    results = [h.queue_balance(1, 30000, 10) for _ in range(6)]
    assert results == [True, True, True, True, False, False]


def test_sleep_then_wake_resumes_cycles():
    rig = ChainRig(3)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 1, 1000)
    assert h.queue_sleep()
    assert rig.run_until(lambda: h.state == S_ASLEEP, 200)
    rig.run_ms(20)
    assert all(m.asleep for m in rig.modules)
    c = h.cycle_count
    rig.run_ms(500)
    assert h.cycle_count == c  # quiet while asleep
    h.wake()
    assert rig.run_until(lambda: h.cycle_count > c, 1000)
    _next_cycle(rig)
    _assert_cycle_data_right(rig, (1, 2, 3))


def test_request_enumerate_forgets_a_shorter_chain():
    rig = ChainRig(4)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 1, 1000)
    rig.links[2].unplugged = True  # modules 3 and 4 are gone for good
    h.request_enumerate()
    assert rig.run_until(lambda: h.cycle_count >= 3 and h.module_count == 2, 2000)
    assert not any(h.missing[1:3])


@pytest.mark.parametrize("n", [1, 2])
def test_tiny_chains(n):
    rig = ChainRig(n)
    assert rig.run_until(lambda: rig.host.cycle_count >= 2, 1000)
    _assert_cycle_data_right(rig, range(1, n + 1))


def test_host_cable_unplugged_everything_missing_then_back():
    rig = ChainRig(4)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 2, 1000)
    rig.links[0].unplugged = True
    assert rig.run_until(lambda: all(h.missing[1:5]), 1200)
    assert h.module_count == 4  # still known, reported missing, not forgotten
    rig.run_ms(1500)  # keeps trying (wake + enumerate) without crashing
    e = h.enumerations
    assert e >= 2
    rig.links[0].unplugged = False
    assert rig.run_until(lambda: not any(h.missing[1:5]) and h.fresh[4] == FRESH_ALL, 1500)
    _next_cycle(rig)
    _assert_cycle_data_right(rig, range(1, 5))


def test_unanswered_command_is_resent_a_bounded_number_of_times():
    rig = ChainRig(3)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 1, 1000)
    rig.modules[2].mute = {P.BALANCE}
    sent0 = rig.links[0].a.bytes_written
    t0 = h.timeouts
    assert h.queue_balance(3, 30000, 60)
    rig.run_ms(300)
    assert h.timeouts - t0 == h.retries + 1  # first try + retries, then it gives up
    assert h.balance_ack[3] == 0 and h._cmd_count == 0
    assert rig.links[0].a.bytes_written > sent0
    _next_cycle(rig)
    _assert_cycle_data_right(rig, (1, 2, 3))  # and the chain carries on


def test_a_module_that_rebooted_and_lost_its_address_is_found_again():
    rig = ChainRig(4)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 2, 1000)
    rig.modules[2].link.address = 0  # module 3 restarted (deep sleep wake restarts code.py)
    _next_cycle(rig)
    assert h.fresh[3] == 0 and h.cell_100uv(3, 0) == P.CELL_UNKNOWN
    _assert_cycle_data_right(rig, (1, 2, 4))  # the others are not disturbed
    e = h.enumerations
    assert rig.run_until(lambda: h.enumerations > e and h.fresh[3] == FRESH_ALL, 3000)
    assert rig.modules[2].link.address == 3 and not h.missing[3]
    _next_cycle(rig)
    _assert_cycle_data_right(rig, range(1, 5))


def test_a_module_with_more_cells_than_the_host_holds_is_refused_not_spilled_into_its_neighbour():
    rig = ChainRig(3)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 2, 1000)
    rig.modules[1].cell_count = 16  # module 2 answers 16 cells; the host keeps 12 per module
    _next_cycle(rig)
    _next_cycle(rig)
    assert h.bad_payloads > 0
    assert h.fresh[2] & 1 == 0 and all(h.cell_100uv(2, i) == P.CELL_UNKNOWN for i in range(12))
    _assert_cycle_data_right(rig, (1, 3))  # module 3's cells are its own


def test_a_forged_enumerated_from_beyond_the_chain_makes_no_phantom_module():
    # Good CRC, the awaited seq, addressed to the host, claiming address 7 on a 3-module chain: hop-count
    # answers come as the run 1, 2, 3, so an answer that does not extend the run is dropped and counted.
    from chain import S_ENUM

    rig = ChainRig(3)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 1, 1000)
    h.request_enumerate()
    assert rig.run_until(lambda: h.state == S_ENUM and not rig.links[0].a.tx_busy(), 400, 100)
    bad0 = h.bad_payloads
    forged = bytearray(P.ENUMERATED_LEN)
    P.pack_enumerated_into(forged, 0, 7, 12, 12, 0, 1)
    rig.links[0].b.write(P.build_frame(P.ADDR_HOST, 7, P.ENUMERATED, h._await_seq, bytes(forged)))
    assert rig.run_until(lambda: h.state != S_ENUM, 500)
    assert h.module_count == 3 and not h.present[7] and h.bad_payloads == bad0 + 1
    for _ in range(5):  # more than missing_after cycles: nothing reads missing
        _next_cycle(rig)
    assert not any(h.missing[1:]) and h.module_count == 3
    _assert_cycle_data_right(rig, (1, 2, 3))
